/* A small recursive-descent JSON reader (RFC 8259), enough for Sushi configs. */
#define _GNU_SOURCE
#include "json.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

struct parser {
    const char *start;
    const char *p;
    const char *error;
    int depth;
};

static struct json *parse_value(struct parser *ps);

static void skip_space(struct parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
        ps->p++;
}

static struct json *fail(struct parser *ps, const char *message)
{
    if (!ps->error)
        ps->error = message;
    return NULL;
}

static struct json *new_value(enum json_type type)
{
    struct json *v = calloc(1, sizeof *v);
    if (v)
        v->type = type;
    return v;
}

static void put_utf8(char **out, unsigned code)
{
    char *o = *out;
    if (code < 0x80) {
        *o++ = (char)code;
    } else if (code < 0x800) {
        *o++ = (char)(0xC0 | (code >> 6));
        *o++ = (char)(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
        *o++ = (char)(0xE0 | (code >> 12));
        *o++ = (char)(0x80 | ((code >> 6) & 0x3F));
        *o++ = (char)(0x80 | (code & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (code >> 18));
        *o++ = (char)(0x80 | ((code >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((code >> 6) & 0x3F));
        *o++ = (char)(0x80 | (code & 0x3F));
    }
    *out = o;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static char *parse_string_raw(struct parser *ps)
{
    const char *p = ps->p + 1; /* after the opening quote */
    char *buf = malloc(strlen(p) * 2 + 4), *o = buf;

    if (!buf)
        return NULL;
    for (;;) {
        unsigned char c = (unsigned char)*p;
        if (c == '\0') {
            free(buf);
            ps->p = p;
            fail(ps, "Missing a closing quotation mark in string.");
            return NULL;
        }
        if (c < 0x20) {
            free(buf);
            ps->p = p;
            fail(ps, "Invalid encoding in string.");
            return NULL;
        }
        if (c == '"')
            break;
        if (c == '\\') {
            unsigned code;
            p++;
            switch (*p) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '/': *o++ = '/'; break;
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'n': *o++ = '\n'; break;
            case 'r': *o++ = '\r'; break;
            case 't': *o++ = '\t'; break;
            case 'u':
                if (!hex4(p + 1, &code)) {
                    free(buf);
                    ps->p = p;
                    fail(ps, "Incorrect hex digit after \\u escape in string.");
                    return NULL;
                }
                p += 4;
                if (code >= 0xD800 && code <= 0xDBFF && p[1] == '\\' && p[2] == 'u') {
                    unsigned low;
                    if (hex4(p + 3, &low) && low >= 0xDC00 && low <= 0xDFFF) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                        p += 6;
                    }
                }
                put_utf8(&o, code);
                break;
            default:
                free(buf);
                ps->p = p;
                fail(ps, "Invalid escape character in string.");
                return NULL;
            }
            p++;
            continue;
        }
        *o++ = (char)c;
        p++;
    }
    *o = '\0';
    ps->p = p + 1;
    return buf;
}

static struct json *parse_number(struct parser *ps)
{
    const char *p = ps->p;
    char *end;
    struct json *v;

    if (*p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return fail(ps, "Invalid value.");
    if (*p == '0' && isdigit((unsigned char)p[1]))
        return fail(ps, "Invalid value.");
    v = new_value(JSON_NUMBER);
    if (!v)
        return fail(ps, "Out of memory.");
    v->number = strtod(ps->p, &end);
    ps->p = end;
    return v;
}

static int match_word(struct parser *ps, const char *word)
{
    size_t n = strlen(word);
    if (strncmp(ps->p, word, n) == 0) {
        ps->p += n;
        return 1;
    }
    return 0;
}

static struct json *parse_container(struct parser *ps, int object)
{
    struct json *v = new_value(object ? JSON_OBJECT : JSON_ARRAY), **tail;
    char close = object ? '}' : ']';

    if (!v)
        return fail(ps, "Out of memory.");
    if (++ps->depth > 128) {
        json_free(v);
        return fail(ps, "Document nested too deeply.");
    }
    tail = &v->child;
    ps->p++;
    skip_space(ps);
    if (*ps->p == close) {
        ps->p++;
        ps->depth--;
        return v;
    }
    for (;;) {
        char *key = NULL;
        struct json *item;
        skip_space(ps);
        if (object) {
            if (*ps->p != '"') {
                json_free(v);
                return fail(ps, "Missing a name for object member.");
            }
            key = parse_string_raw(ps);
            if (!key) {
                json_free(v);
                return NULL;
            }
            skip_space(ps);
            if (*ps->p != ':') {
                free(key);
                json_free(v);
                return fail(ps, "Missing a colon after a name of object member.");
            }
            ps->p++;
            skip_space(ps);
        }
        item = parse_value(ps);
        if (!item) {
            free(key);
            json_free(v);
            return NULL;
        }
        item->key = key;
        *tail = item;
        tail = &item->next;
        skip_space(ps);
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == close) {
            ps->p++;
            ps->depth--;
            return v;
        }
        json_free(v);
        return fail(ps, object ? "Missing a comma or '}' after an object member."
                               : "Missing a comma or ']' after an array element.");
    }
}

static struct json *parse_value(struct parser *ps)
{
    struct json *v;
    skip_space(ps);
    switch (*ps->p) {
    case '{':
        return parse_container(ps, 1);
    case '[':
        return parse_container(ps, 0);
    case '"': {
        char *s = parse_string_raw(ps);
        if (!s)
            return NULL;
        v = new_value(JSON_STRING);
        if (!v) {
            free(s);
            return fail(ps, "Out of memory.");
        }
        v->string = s;
        return v;
    }
    case 't':
    case 'f':
        if (match_word(ps, "true") || match_word(ps, "false")) {
            v = new_value(JSON_BOOL);
            if (v)
                v->boolean = ps->p[-1] == 'e' && ps->p[-2] == 'u';
            return v;
        }
        return fail(ps, "Invalid value.");
    case 'n':
        if (match_word(ps, "null"))
            return new_value(JSON_NULL);
        return fail(ps, "Invalid value.");
    case '\0':
        return fail(ps, "The document is empty.");
    default:
        return parse_number(ps);
    }
}

struct json *json_parse(const char *text, const char **error, size_t *error_offset)
{
    struct parser ps = {text, text, NULL, 0};
    struct json *root = parse_value(&ps);

    if (root) {
        skip_space(&ps);
        if (*ps.p != '\0') {
            json_free(root);
            root = NULL;
            fail(&ps, "The document root must not be followed by other values.");
        }
    }
    if (!root) {
        *error = ps.error ? ps.error : "Invalid value.";
        *error_offset = (size_t)(ps.p - ps.start);
    }
    return root;
}

void json_free(struct json *value)
{
    while (value) {
        struct json *next = value->next;
        json_free(value->child);
        free(value->string);
        free(value->key);
        free(value);
        value = next;
    }
}

struct json *json_get(const struct json *object, const char *key)
{
    if (!object || object->type != JSON_OBJECT)
        return NULL;
    for (struct json *m = object->child; m; m = m->next)
        if (m->key && strcmp(m->key, key) == 0)
            return m;
    return NULL;
}

size_t json_length(const struct json *array)
{
    size_t n = 0;
    if (!array)
        return 0;
    for (struct json *m = array->child; m; m = m->next)
        n++;
    return n;
}

const char *json_string(const struct json *object, const char *key)
{
    struct json *v = json_get(object, key);
    return v && v->type == JSON_STRING ? v->string : NULL;
}
