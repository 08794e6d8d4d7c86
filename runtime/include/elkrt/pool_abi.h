/* The C ABI between a plugin's copy of libelkrt and libelkrt_pool.so.1, the one
 * inference pool of the process. Every elkbuild plugin bundles a copy of the
 * library; the loader maps a SONAME once per process, so whichever copy comes first
 * serves every plugin, and these declarations are all the copies must agree on.
 *
 * Rules for changing it: elkrt_pool_open() never changes while the SONAME stays.
 * A compatible addition appends fields to elkrt_pool_api_v1 (callers check size).
 * Anything else is a new ELKRT_POOL_ABI_VERSION: a copy answers only the versions
 * it speaks, and a plugin that gets no answer keeps a pool of its own. */
#ifndef ELKRT_POOL_ABI_H
#define ELKRT_POOL_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ELKRT_POOL_ABI_VERSION 1u
#define ELKRT_POOL_SONAME "libelkrt_pool.so.1"

/* A plugin's model as the pool sees it; both calls run on a pool worker. */
typedef struct elkrt_pool_client_v1
{
    void* context;
    int (*has_pending) (void* context);     /* nonzero: a frame is waiting */
    void (*process_pending) (void* context); /* run every waiting frame */
} elkrt_pool_client_v1;

typedef struct elkrt_pool_options_v1
{
    int32_t threads;           /* 0: ELKRT_POOL_THREADS, else 1 on <= 2 cores, else 2 */
    int32_t min_idle_sleep_us;
    int32_t max_idle_sleep_us;
    int32_t realtime_priority; /* -1: ELKRT_POOL_PRIORITY, else 40; 0: normal scheduling */
} elkrt_pool_options_v1;

typedef struct elkrt_pool_stats_v1
{
    uint64_t identity;        /* the same for every caller of one pool */
    int32_t threads;
    int32_t max_idle_sleep_us;
    int32_t workers_that_ran;
    int32_t realtime_workers;
    int32_t clients;
} elkrt_pool_stats_v1;

typedef struct elkrt_pool_api_v1
{
    uint32_t abi_version;
    uint32_t size; /* sizeof (elkrt_pool_api_v1) of the copy that answered */
    /* Before the pool's first attach: sets its size, returns 1; later: 0, no change. */
    int (*configure) (const elkrt_pool_options_v1* options);
    /* Not real-time safe. A handle >= 0, or -1 when every slot is taken. The client
     * struct is copied. */
    int (*attach) (const elkrt_pool_client_v1* client);
    /* Not real-time safe: returns once no worker runs the client any more. */
    void (*detach) (int handle);
    void (*stats) (elkrt_pool_stats_v1* out);
} elkrt_pool_api_v1;

/* The API of version `wanted`, or NULL when this copy does not speak it; *spoken
 * (when not NULL) is set to the newest version this copy speaks. */
const elkrt_pool_api_v1* elkrt_pool_open (uint32_t wanted, uint32_t* spoken);

#ifdef __cplusplus
}
#endif

#endif
