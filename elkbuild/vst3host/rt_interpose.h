// The interface between vst3host and librt_interpose.so: which calls are counted and
// how the host arms, reads and resets the counters. Both sides include this file, so
// the order of the names below is the one ABI they share.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

enum ElkRtFunction
{
    ELK_RT_MALLOC,
    ELK_RT_CALLOC,
    ELK_RT_REALLOC,
    ELK_RT_FREE,
    ELK_RT_POSIX_MEMALIGN,
    ELK_RT_ALIGNED_ALLOC,
    ELK_RT_MEMALIGN,
    ELK_RT_NEW,
    ELK_RT_NEW_ARRAY,
    ELK_RT_DELETE,
    ELK_RT_DELETE_ARRAY,
    ELK_RT_MUTEX_LOCK,
    ELK_RT_MUTEX_TRYLOCK,
    ELK_RT_MUTEX_TIMEDLOCK,
    ELK_RT_COND_WAIT,
    ELK_RT_COND_TIMEDWAIT,
    ELK_RT_COND_CLOCKWAIT,
    ELK_RT_COND_SIGNAL,
    ELK_RT_COND_BROADCAST,
    ELK_RT_FUNCTION_COUNT
};

// Distinct return addresses kept per function, so a report can say who called.
#define ELK_RT_MAX_CALLERS 64

// Arm (1) or disarm (0) counting for the calling thread only.
void elk_rt_arm (int on);
// Name of one counted function, as the report prints it.
const char* elk_rt_name (int function);
// Calls counted so far for one function (all armed threads).
unsigned long long elk_rt_count (int function);
// Up to ELK_RT_MAX_CALLERS distinct callers of one function and the calls each
// made; returns how many. Calls from further callers are counted, not placed.
int elk_rt_callers (int function, void** out, unsigned long long* calls, int max);
void elk_rt_reset (void);

#ifdef __cplusplus
}
#endif
