// librt_interpose.so: counts the calls a real-time audio thread must not make.
//
// Loaded with LD_PRELOAD ahead of libc and libstdc++, it defines the allocation,
// mutex and condition-variable functions, forwards each to the next definition
// (dlsym RTLD_NEXT) and, only on a thread that armed itself with elk_rt_arm(1),
// counts the call and remembers who made it. Other threads pay one TLS read.
#include "rt_interpose.h"

#include <dlfcn.h>
#include <pthread.h>

#include <cstddef>
#include <cstring>
#include <new>

namespace
{
using MallocFn = void* (*) (size_t);
using CallocFn = void* (*) (size_t, size_t);
using ReallocFn = void* (*) (void*, size_t);
using FreeFn = void (*) (void*);
using PosixMemalignFn = int (*) (void**, size_t, size_t);
using AlignedAllocFn = void* (*) (size_t, size_t);
using MutexFn = int (*) (pthread_mutex_t*);
using MutexTimedFn = int (*) (pthread_mutex_t*, const struct timespec*);
using CondWaitFn = int (*) (pthread_cond_t*, pthread_mutex_t*);
using CondTimedFn = int (*) (pthread_cond_t*, pthread_mutex_t*, const struct timespec*);
using CondClockFn = int (*) (pthread_cond_t*, pthread_mutex_t*, clockid_t, const struct timespec*);
using CondFn = int (*) (pthread_cond_t*);

struct Real
{
    MallocFn malloc;
    CallocFn calloc;
    ReallocFn realloc;
    FreeFn free;
    PosixMemalignFn posixMemalign;
    AlignedAllocFn alignedAlloc;
    AlignedAllocFn memalign;
    MutexFn mutexLock;
    MutexFn mutexTrylock;
    MutexTimedFn mutexTimedlock;
    CondWaitFn condWait;
    CondTimedFn condTimedwait;
    CondClockFn condClockwait;
    CondFn condSignal;
    CondFn condBroadcast;
};

Real real {};

const char* const names[ELK_RT_FUNCTION_COUNT] = {
    "malloc", "calloc", "realloc", "free", "posix_memalign", "aligned_alloc", "memalign",
    "operator new", "operator new[]", "operator delete", "operator delete[]",
    "pthread_mutex_lock", "pthread_mutex_trylock", "pthread_mutex_timedlock",
    "pthread_cond_wait", "pthread_cond_timedwait", "pthread_cond_clockwait",
    "pthread_cond_signal", "pthread_cond_broadcast",
};

// initial-exec: reading the flag must never call __tls_get_addr, which may allocate.
__thread int armed __attribute__ ((tls_model ("initial-exec"))) = 0;

unsigned long long counts[ELK_RT_FUNCTION_COUNT];
void* callers[ELK_RT_FUNCTION_COUNT][ELK_RT_MAX_CALLERS];
unsigned long long callerCalls[ELK_RT_FUNCTION_COUNT][ELK_RT_MAX_CALLERS];

// dlsym itself may allocate before the real allocator is known: those few requests
// are served from this static arena and never given back.
alignas (64) char bootArena[64 * 1024];
size_t bootUsed = 0;
bool resolving = false;

struct BootHeader
{
    size_t size;
    size_t pad;
};

void* bootAlloc (size_t size, size_t alignment = alignof (std::max_align_t))
{
    if (alignment < alignof (BootHeader))
        alignment = alignof (BootHeader);
    size_t start = (bootUsed + sizeof (BootHeader) + alignment - 1) & ~(alignment - 1);
    if (start + size > sizeof (bootArena))
        return nullptr;
    auto* header = reinterpret_cast<BootHeader*> (bootArena + start - sizeof (BootHeader));
    header->size = size;
    bootUsed = start + size;
    return bootArena + start;
}

bool inBoot (const void* p)
{
    auto* c = static_cast<const char*> (p);
    return c >= bootArena && c < bootArena + sizeof (bootArena);
}

size_t bootSize (const void* p)
{
    return reinterpret_cast<const BootHeader*> (static_cast<const char*> (p) - sizeof (BootHeader))->size;
}

template <typename Fn>
Fn next (const char* name)
{
    return reinterpret_cast<Fn> (dlsym (RTLD_NEXT, name));
}

template <typename Fn>
Fn nextVersioned (const char* name)
{
    // On x86_64 an unversioned dlsym of pthread_cond_* finds the GLIBC_2.2.5 compat
    // version, which uses another condvar layout; ask for the current one first.
    if (auto fn = reinterpret_cast<Fn> (dlvsym (RTLD_NEXT, name, "GLIBC_2.3.2")))
        return fn;
    return next<Fn> (name);
}

void resolve()
{
    if (resolving)
        return;
    resolving = true;
    real.malloc = next<MallocFn> ("malloc");
    real.calloc = next<CallocFn> ("calloc");
    real.realloc = next<ReallocFn> ("realloc");
    real.free = next<FreeFn> ("free");
    real.posixMemalign = next<PosixMemalignFn> ("posix_memalign");
    real.alignedAlloc = next<AlignedAllocFn> ("aligned_alloc");
    real.memalign = next<AlignedAllocFn> ("memalign");
    real.mutexLock = next<MutexFn> ("pthread_mutex_lock");
    real.mutexTrylock = next<MutexFn> ("pthread_mutex_trylock");
    real.mutexTimedlock = next<MutexTimedFn> ("pthread_mutex_timedlock");
    real.condWait = nextVersioned<CondWaitFn> ("pthread_cond_wait");
    real.condTimedwait = nextVersioned<CondTimedFn> ("pthread_cond_timedwait");
    real.condClockwait = next<CondClockFn> ("pthread_cond_clockwait");
    real.condSignal = nextVersioned<CondFn> ("pthread_cond_signal");
    real.condBroadcast = nextVersioned<CondFn> ("pthread_cond_broadcast");
    resolving = false;
}

__attribute__ ((constructor)) void resolveAtLoad() { resolve(); }

inline void note (ElkRtFunction function, void* caller)
{
    if (! armed)
        return;
    __atomic_fetch_add (&counts[function], 1ULL, __ATOMIC_RELAXED);
    // Only armed threads get here and the host arms one, so the slots need no lock.
    void** slots = callers[function];
    for (int i = 0; i < ELK_RT_MAX_CALLERS; ++i)
    {
        if (slots[i] == nullptr)
            slots[i] = caller;
        if (slots[i] == caller)
        {
            ++callerCalls[function][i];
            return;
        }
    }
}

// The allocations behind operator new/delete: straight to libc, so a `new` is counted
// once, as operator new, not again as the malloc inside it.
void* rawMalloc (size_t size)
{
    if (real.malloc == nullptr)
    {
        if (resolving)
            return bootAlloc (size);
        resolve();
    }
    return real.malloc (size);
}

void* rawAligned (size_t alignment, size_t size)
{
    if (real.posixMemalign == nullptr)
    {
        if (resolving)
            return bootAlloc (size, alignment);
        resolve();
    }
    if (alignment < sizeof (void*))
        alignment = sizeof (void*);
    void* p = nullptr;
    return real.posixMemalign (&p, alignment, size) == 0 ? p : nullptr;
}

void rawFree (void* p)
{
    if (p == nullptr || inBoot (p))
        return;
    if (real.free == nullptr)
        resolve();
    if (real.free != nullptr)
        real.free (p);
}

void* newOrThrow (size_t size, size_t alignment)
{
    if (size == 0)
        size = 1;
    for (;;)
    {
        void* p = alignment == 0 ? rawMalloc (size) : rawAligned (alignment, size);
        if (p != nullptr)
            return p;
        std::new_handler handler = std::get_new_handler();
        if (handler == nullptr)
            throw std::bad_alloc();
        handler();
    }
}

void* newNothrow (size_t size, size_t alignment) noexcept
{
    try
    {
        return newOrThrow (size, alignment);
    }
    catch (...)
    {
        return nullptr;
    }
}

#define RESOLVED(field)                          \
    do                                           \
    {                                            \
        if (real.field == nullptr && ! resolving) \
            resolve();                           \
    } while (0)

} // namespace

extern "C" {

void elk_rt_arm (int on) { armed = on; }

const char* elk_rt_name (int function)
{
    return function >= 0 && function < ELK_RT_FUNCTION_COUNT ? names[function] : "";
}

unsigned long long elk_rt_count (int function)
{
    if (function < 0 || function >= ELK_RT_FUNCTION_COUNT)
        return 0;
    return __atomic_load_n (&counts[function], __ATOMIC_RELAXED);
}

int elk_rt_callers (int function, void** out, unsigned long long* calls, int max)
{
    if (function < 0 || function >= ELK_RT_FUNCTION_COUNT)
        return 0;
    int n = 0;
    for (; n < max && n < ELK_RT_MAX_CALLERS && callers[function][n] != nullptr; ++n)
    {
        out[n] = callers[function][n];
        calls[n] = callerCalls[function][n];
    }
    return n;
}

void elk_rt_reset (void)
{
    std::memset (counts, 0, sizeof (counts));
    std::memset (callers, 0, sizeof (callers));
    std::memset (callerCalls, 0, sizeof (callerCalls));
}

void* malloc (size_t size) noexcept
{
    if (real.malloc == nullptr)
    {
        if (resolving)
            return bootAlloc (size);
        resolve();
    }
    note (ELK_RT_MALLOC, __builtin_return_address (0));
    return real.malloc (size);
}

void* calloc (size_t count, size_t size) noexcept
{
    if (real.calloc == nullptr)
    {
        // The arena is static and never reused, so it is already zero.
        if (resolving)
            return size != 0 && count > static_cast<size_t> (-1) / size ? nullptr : bootAlloc (count * size);
        resolve();
    }
    note (ELK_RT_CALLOC, __builtin_return_address (0));
    return real.calloc (count, size);
}

void* realloc (void* p, size_t size) noexcept
{
    if (p != nullptr && inBoot (p))
    {
        // A boot block moves to the real heap: copy what it held.
        void* moved = rawMalloc (size);
        if (moved != nullptr)
            std::memcpy (moved, p, bootSize (p) < size ? bootSize (p) : size);
        return moved;
    }
    if (real.realloc == nullptr)
    {
        if (resolving)
            return bootAlloc (size);
        resolve();
    }
    note (ELK_RT_REALLOC, __builtin_return_address (0));
    return real.realloc (p, size);
}

void free (void* p) noexcept
{
    if (p != nullptr && inBoot (p))
        return;
    if (real.free == nullptr)
    {
        if (resolving)
            return; // leaks one block during bootstrap, never frees the wrong heap
        resolve();
    }
    // free(NULL) does nothing, so it is no hazard (JUCE's HeapBlock does it per block).
    if (p != nullptr)
        note (ELK_RT_FREE, __builtin_return_address (0));
    real.free (p);
}

int posix_memalign (void** out, size_t alignment, size_t size) noexcept
{
    if (real.posixMemalign == nullptr)
    {
        if (resolving)
        {
            *out = bootAlloc (size, alignment);
            return *out != nullptr ? 0 : 12; // ENOMEM
        }
        resolve();
    }
    note (ELK_RT_POSIX_MEMALIGN, __builtin_return_address (0));
    return real.posixMemalign (out, alignment, size);
}

void* aligned_alloc (size_t alignment, size_t size) noexcept
{
    if (real.alignedAlloc == nullptr)
    {
        if (resolving)
            return bootAlloc (size, alignment);
        resolve();
    }
    note (ELK_RT_ALIGNED_ALLOC, __builtin_return_address (0));
    return real.alignedAlloc (alignment, size);
}

void* memalign (size_t alignment, size_t size) noexcept
{
    if (real.memalign == nullptr)
    {
        if (resolving)
            return bootAlloc (size, alignment);
        resolve();
    }
    note (ELK_RT_MEMALIGN, __builtin_return_address (0));
    return real.memalign (alignment, size);
}

// Mutexes are not used by dlsym's own bootstrap (ld.so locks internally), so a
// missing pointer here only means this library's constructor has not run yet.
int pthread_mutex_lock (pthread_mutex_t* m) noexcept
{
    RESOLVED (mutexLock);
    note (ELK_RT_MUTEX_LOCK, __builtin_return_address (0));
    return real.mutexLock (m);
}

int pthread_mutex_trylock (pthread_mutex_t* m) noexcept
{
    RESOLVED (mutexTrylock);
    note (ELK_RT_MUTEX_TRYLOCK, __builtin_return_address (0));
    return real.mutexTrylock (m);
}

int pthread_mutex_timedlock (pthread_mutex_t* m, const struct timespec* t) noexcept
{
    RESOLVED (mutexTimedlock);
    note (ELK_RT_MUTEX_TIMEDLOCK, __builtin_return_address (0));
    return real.mutexTimedlock (m, t);
}

int pthread_cond_wait (pthread_cond_t* c, pthread_mutex_t* m)
{
    RESOLVED (condWait);
    note (ELK_RT_COND_WAIT, __builtin_return_address (0));
    return real.condWait (c, m);
}

int pthread_cond_timedwait (pthread_cond_t* c, pthread_mutex_t* m, const struct timespec* t)
{
    RESOLVED (condTimedwait);
    note (ELK_RT_COND_TIMEDWAIT, __builtin_return_address (0));
    return real.condTimedwait (c, m, t);
}

int pthread_cond_clockwait (pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock, const struct timespec* t)
{
    RESOLVED (condClockwait);
    note (ELK_RT_COND_CLOCKWAIT, __builtin_return_address (0));
    return real.condClockwait (c, m, clock, t);
}

int pthread_cond_signal (pthread_cond_t* c) noexcept
{
    RESOLVED (condSignal);
    note (ELK_RT_COND_SIGNAL, __builtin_return_address (0));
    return real.condSignal (c);
}

int pthread_cond_broadcast (pthread_cond_t* c) noexcept
{
    RESOLVED (condBroadcast);
    note (ELK_RT_COND_BROADCAST, __builtin_return_address (0));
    return real.condBroadcast (c);
}

} // extern "C"

// Every replaceable operator new/delete, counted under four names (plain/array).
void* operator new (size_t n)
{
    note (ELK_RT_NEW, __builtin_return_address (0));
    return newOrThrow (n, 0);
}
void* operator new[] (size_t n)
{
    note (ELK_RT_NEW_ARRAY, __builtin_return_address (0));
    return newOrThrow (n, 0);
}
void* operator new (size_t n, const std::nothrow_t&) noexcept
{
    note (ELK_RT_NEW, __builtin_return_address (0));
    return newNothrow (n, 0);
}
void* operator new[] (size_t n, const std::nothrow_t&) noexcept
{
    note (ELK_RT_NEW_ARRAY, __builtin_return_address (0));
    return newNothrow (n, 0);
}
void* operator new (size_t n, std::align_val_t a)
{
    note (ELK_RT_NEW, __builtin_return_address (0));
    return newOrThrow (n, static_cast<size_t> (a));
}
void* operator new[] (size_t n, std::align_val_t a)
{
    note (ELK_RT_NEW_ARRAY, __builtin_return_address (0));
    return newOrThrow (n, static_cast<size_t> (a));
}
void* operator new (size_t n, std::align_val_t a, const std::nothrow_t&) noexcept
{
    note (ELK_RT_NEW, __builtin_return_address (0));
    return newNothrow (n, static_cast<size_t> (a));
}
void* operator new[] (size_t n, std::align_val_t a, const std::nothrow_t&) noexcept
{
    note (ELK_RT_NEW_ARRAY, __builtin_return_address (0));
    return newNothrow (n, static_cast<size_t> (a));
}

void operator delete (void* p) noexcept
{
    if (p != nullptr) // deleting null does nothing
        note (ELK_RT_DELETE, __builtin_return_address (0));
    rawFree (p);
}
void operator delete[] (void* p) noexcept
{
    if (p != nullptr) // deleting null does nothing
        note (ELK_RT_DELETE_ARRAY, __builtin_return_address (0));
    rawFree (p);
}
void operator delete (void* p, size_t) noexcept
{
    if (p != nullptr) // deleting null does nothing
        note (ELK_RT_DELETE, __builtin_return_address (0));
    rawFree (p);
}
void operator delete[] (void* p, size_t) noexcept
{
    if (p != nullptr) // deleting null does nothing
        note (ELK_RT_DELETE_ARRAY, __builtin_return_address (0));
    rawFree (p);
}
void operator delete (void* p, const std::nothrow_t&) noexcept
{
    if (p != nullptr) // deleting null does nothing
        note (ELK_RT_DELETE, __builtin_return_address (0));
    rawFree (p);
}
void operator delete[] (void* p, const std::nothrow_t&) noexcept
{
    if (p != nullptr) // deleting null does nothing
        note (ELK_RT_DELETE_ARRAY, __builtin_return_address (0));
    rawFree (p);
}
void operator delete (void* p, std::align_val_t) noexcept
{
    if (p != nullptr) // deleting null does nothing
        note (ELK_RT_DELETE, __builtin_return_address (0));
    rawFree (p);
}
void operator delete[] (void* p, std::align_val_t) noexcept
{
    if (p != nullptr) // deleting null does nothing
        note (ELK_RT_DELETE_ARRAY, __builtin_return_address (0));
    rawFree (p);
}
void operator delete (void* p, size_t, std::align_val_t) noexcept
{
    if (p != nullptr) // deleting null does nothing
        note (ELK_RT_DELETE, __builtin_return_address (0));
    rawFree (p);
}
void operator delete[] (void* p, size_t, std::align_val_t) noexcept
{
    if (p != nullptr) // deleting null does nothing
        note (ELK_RT_DELETE_ARRAY, __builtin_return_address (0));
    rawFree (p);
}
void operator delete (void* p, std::align_val_t, const std::nothrow_t&) noexcept
{
    if (p != nullptr) // deleting null does nothing
        note (ELK_RT_DELETE, __builtin_return_address (0));
    rawFree (p);
}
void operator delete[] (void* p, std::align_val_t, const std::nothrow_t&) noexcept
{
    if (p != nullptr) // deleting null does nothing
        note (ELK_RT_DELETE_ARRAY, __builtin_return_address (0));
    rawFree (p);
}
