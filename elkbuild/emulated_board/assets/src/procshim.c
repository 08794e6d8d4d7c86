/*
 * libelk-procshim.so: gives the emulated board a /proc/xenomai directory.
 *
 * On Elk Audio OS 0.11 the Cobalt core publishes /proc/xenomai/sched/stat. The
 * emulated board runs on a stock kernel whose procfs cannot get new entries (and
 * refuses to be an overlayfs layer), so this library, loaded into every program
 * through /etc/ld.so.preload, sends any path under /proc/xenomai to the
 * directory the board's rtstat keeps up to date. Everything else in /proc is the
 * real procfs, untouched. Only dynamically linked programs see it (all of the
 * board's are). Like the kernel's file, sched/stat is made afresh at every open
 * from the current thread table, so counters move while it is being watched.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rt_table.h"

/* Built with -fvisibility=hidden: only the wrapped libc calls are exported. */
#define EXPORT __attribute__((visibility("default")))

#define SHIM_FROM "/proc/xenomai"
#define SHIM_TO RT_XENOMAI_DIR

static const char *redirect(const char *path, char *buf)
{
    size_t n = sizeof SHIM_FROM - 1;
    if (!path || strncmp(path, SHIM_FROM, n) != 0 || (path[n] != '\0' && path[n] != '/'))
        return path;
    snprintf(buf, PATH_MAX, "%s%s", SHIM_TO, path + n);
    return buf;
}

#define NEXT(name) static __typeof__(name) *next_##name; \
    if (!next_##name) next_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

static int needs_mode(int flags)
{
    return (flags & O_CREAT) || (flags & __O_TMPFILE) == __O_TMPFILE;
}

/* A fresh sched/stat, or -1 when the file is not there (the 1.x profile). */
static int render_stat(const char *mapped, int flags)
{
    struct rt_table *table;
    FILE *out;
    int fd, lock;

    if (strcmp(mapped, RT_XENOMAI_STAT) != 0 || (flags & O_ACCMODE) != O_RDONLY ||
        access(RT_XENOMAI_STAT, F_OK) != 0)
        return -1;
    table = malloc(sizeof *table);
    if (!table)
        return -1;
    lock = rt_lock();
    if (lock < 0 || rt_load(table) != 0) {
        rt_unlock(lock);
        free(table);
        return -1;
    }
    rt_unlock(lock);
    fd = memfd_create("xenomai-sched-stat", (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
    out = fd >= 0 ? fdopen(dup(fd), "w") : NULL;
    if (!out) {
        if (fd >= 0)
            close(fd);
        free(table);
        return -1;
    }
    rt_print_xenomai_stat(table, out);
    fclose(out);
    free(table);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

#define OPEN_WRAPPER(fn)                                              \
    EXPORT int fn(const char *path, int flags, ...)                   \
    {                                                                 \
        char buf[PATH_MAX];                                           \
        mode_t mode = 0;                                              \
        NEXT(fn);                                                     \
        if (needs_mode(flags)) {                                      \
            va_list ap;                                               \
            va_start(ap, flags);                                      \
            mode = va_arg(ap, mode_t);                                \
            va_end(ap);                                               \
        }                                                             \
        const char *mapped = redirect(path, buf);                     \
        int fresh = mapped != path ? render_stat(mapped, flags) : -1; \
        if (fresh >= 0)                                               \
            return fresh;                                             \
        return next_##fn(mapped, flags, mode);                        \
    }
OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)

#define OPENAT_WRAPPER(fn)                                            \
    EXPORT int fn(int dirfd, const char *path, int flags, ...)        \
    {                                                                 \
        char buf[PATH_MAX];                                           \
        mode_t mode = 0;                                              \
        NEXT(fn);                                                     \
        if (needs_mode(flags)) {                                      \
            va_list ap;                                               \
            va_start(ap, flags);                                      \
            mode = va_arg(ap, mode_t);                                \
            va_end(ap);                                               \
        }                                                             \
        const char *mapped = redirect(path, buf);                     \
        int fresh = mapped != path ? render_stat(mapped, flags) : -1; \
        if (fresh >= 0)                                               \
            return fresh;                                             \
        return next_##fn(dirfd, mapped, flags, mode);                 \
    }
OPENAT_WRAPPER(openat)
OPENAT_WRAPPER(openat64)

/* The _FORTIFY_SOURCE entry points. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
EXPORT int __open_2(const char *path, int flags) { char b[PATH_MAX]; NEXT(__open_2); return next___open_2(redirect(path, b), flags); }
EXPORT int __open64_2(const char *path, int flags) { char b[PATH_MAX]; NEXT(__open64_2); return next___open64_2(redirect(path, b), flags); }
EXPORT int __openat_2(int d, const char *path, int flags) { char b[PATH_MAX]; NEXT(__openat_2); return next___openat_2(d, redirect(path, b), flags); }
EXPORT int __openat64_2(int d, const char *path, int flags) { char b[PATH_MAX]; NEXT(__openat64_2); return next___openat64_2(d, redirect(path, b), flags); }

static FILE *fresh_stream(const char *mapped, const char *path, const char *mode)
{
    int fd = mapped != path && strcmp(mode, "r") == 0 ? render_stat(mapped, O_RDONLY) : -1;
    return fd >= 0 ? fdopen(fd, "r") : NULL;
}

EXPORT FILE *fopen(const char *path, const char *mode) { char b[PATH_MAX]; const char *m = redirect(path, b); FILE *f = fresh_stream(m, path, mode); NEXT(fopen); return f ? f : next_fopen(m, mode); }
EXPORT FILE *fopen64(const char *path, const char *mode) { char b[PATH_MAX]; const char *m = redirect(path, b); FILE *f = fresh_stream(m, path, mode); NEXT(fopen64); return f ? f : next_fopen64(m, mode); }
EXPORT DIR *opendir(const char *path) { char b[PATH_MAX]; NEXT(opendir); return next_opendir(redirect(path, b)); }

EXPORT int stat(const char *path, struct stat *st) { char b[PATH_MAX]; NEXT(stat); return next_stat(redirect(path, b), st); }
EXPORT int lstat(const char *path, struct stat *st) { char b[PATH_MAX]; NEXT(lstat); return next_lstat(redirect(path, b), st); }
EXPORT int stat64(const char *path, struct stat64 *st) { char b[PATH_MAX]; NEXT(stat64); return next_stat64(redirect(path, b), st); }
EXPORT int lstat64(const char *path, struct stat64 *st) { char b[PATH_MAX]; NEXT(lstat64); return next_lstat64(redirect(path, b), st); }
EXPORT int fstatat(int d, const char *path, struct stat *st, int f) { char b[PATH_MAX]; NEXT(fstatat); return next_fstatat(d, redirect(path, b), st, f); }
EXPORT int fstatat64(int d, const char *path, struct stat64 *st, int f) { char b[PATH_MAX]; NEXT(fstatat64); return next_fstatat64(d, redirect(path, b), st, f); }
EXPORT int statx(int d, const char *path, int f, unsigned int mask, struct statx *st) { char b[PATH_MAX]; NEXT(statx); return next_statx(d, redirect(path, b), f, mask, st); }
EXPORT int access(const char *path, int mode) { char b[PATH_MAX]; NEXT(access); return next_access(redirect(path, b), mode); }
EXPORT int faccessat(int d, const char *path, int mode, int f) { char b[PATH_MAX]; NEXT(faccessat); return next_faccessat(d, redirect(path, b), mode, f); }
EXPORT int euidaccess(const char *path, int mode) { char b[PATH_MAX]; NEXT(euidaccess); return next_euidaccess(redirect(path, b), mode); }
EXPORT int eaccess(const char *path, int mode) { char b[PATH_MAX]; NEXT(eaccess); return next_eaccess(redirect(path, b), mode); }
EXPORT int chdir(const char *path) { char b[PATH_MAX]; NEXT(chdir); return next_chdir(redirect(path, b)); }

/* ls -l asks for ACLs and security labels too. */
EXPORT ssize_t getxattr(const char *path, const char *name, void *value, size_t size) { char b[PATH_MAX]; NEXT(getxattr); return next_getxattr(redirect(path, b), name, value, size); }
EXPORT ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size) { char b[PATH_MAX]; NEXT(lgetxattr); return next_lgetxattr(redirect(path, b), name, value, size); }
EXPORT ssize_t listxattr(const char *path, char *list, size_t size) { char b[PATH_MAX]; NEXT(listxattr); return next_listxattr(redirect(path, b), list, size); }
EXPORT ssize_t llistxattr(const char *path, char *list, size_t size) { char b[PATH_MAX]; NEXT(llistxattr); return next_llistxattr(redirect(path, b), list, size); }
EXPORT ssize_t readlink(const char *path, char *out, size_t size) { char b[PATH_MAX]; NEXT(readlink); return next_readlink(redirect(path, b), out, size); }
