/* A small JSON reader for the sushi stand-in: parses a whole document into a tree. */
#ifndef ELK_BOARD_JSON_H
#define ELK_BOARD_JSON_H

#include <stddef.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
    enum json_type type;
    double number;
    int boolean;
    char *string;           /* JSON_STRING value */
    char *key;              /* member name when inside an object */
    struct json *child;     /* first element / member */
    struct json *next;      /* next sibling */
};

/* Parse `text`; on failure returns NULL and sets *error and *error_offset. */
struct json *json_parse(const char *text, const char **error, size_t *error_offset);
void json_free(struct json *value);

struct json *json_get(const struct json *object, const char *key);
size_t json_length(const struct json *array);
const char *json_string(const struct json *object, const char *key); /* NULL if absent */

#endif
