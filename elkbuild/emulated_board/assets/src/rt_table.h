/*
 * The emulated board's table of real-time threads.
 *
 * A real Elk board gets these rows from the kernel: Cobalt (Xenomai 3, Elk Audio
 * OS 0.11) publishes /proc/xenomai/sched/stat, EVL (Xenomai 4, Elk Audio OS 1.x)
 * answers `evl ps`. The emulated board keeps them in one text file shared by the
 * sushi stand-in (its audio threads), the `rtstat` tool (tests raise counters
 * with it) and the `evl` tool, all serialised by an flock.
 */
#ifndef ELK_BOARD_RT_TABLE_H
#define ELK_BOARD_RT_TABLE_H

#include <stdio.h>
#include <sys/types.h>

#define RT_STATE_DIR "/run/elk-board"
#define RT_TABLE_FILE RT_STATE_DIR "/rt/threads"
#define RT_LOCK_FILE RT_STATE_DIR "/rt/lock"
#define RT_PROFILE_FILE RT_STATE_DIR "/profile"
/* What the board's programs see as /proc/xenomai (libelk-procshim.so, README.md). */
#define RT_XENOMAI_DIR RT_STATE_DIR "/proc-xenomai"
#define RT_XENOMAI_STAT RT_XENOMAI_DIR "/sched/stat"

#define RT_MAX_THREADS 256
#define RT_NAME_MAX 96

struct rt_thread {
    int pid;
    int cpu;
    unsigned long msw;      /* mode switches (0.11 MSW) = in-band switches (1.x ISW) */
    unsigned long csw;      /* context switches (MSW table CSW, EVL CTXSW) */
    unsigned long xsc;      /* real-time system calls (XSC, EVL SYS) */
    unsigned long pf;       /* page faults (0.11 only) */
    unsigned long rwa;      /* remote wake-ups (EVL only) */
    unsigned int state;     /* Cobalt STAT bits, printed as 8 hex digits */
    int pct_tenths;         /* %CPU in tenths of a percent */
    int kernel;             /* RT_USER, RT_KERNEL (shown in brackets) or RT_LIVE */
    int prio;
    char name[RT_NAME_MAX];
};

/* Kinds of rows. RT_LIVE rows belong to a running thread (its pid is its TID) and
 * vanish with it, as the kernel's do; RT_USER rows stay until removed. */
#define RT_USER 0
#define RT_KERNEL 1
#define RT_LIVE 2

struct rt_table {
    int count;
    struct rt_thread rows[RT_MAX_THREADS];
};

/* Take the table lock; returns an fd to pass to rt_unlock, or -1. */
int rt_lock(void);
void rt_unlock(int fd);

/* Load the table; rows of threads that ended are left out. */
int rt_load(struct rt_table *table);
/* Save the table, then render the 0.11 stat file when that profile is active. */
int rt_save(const struct rt_table *table);

/* "0.11" or "1.x"; "1.x" when nothing was chosen. */
const char *rt_profile(void);

struct rt_thread *rt_add(struct rt_table *table, const char *name, int pid, int cpu,
                         int kernel);
int rt_remove_pid(struct rt_table *table, int pid);
int rt_remove_name(struct rt_table *table, const char *name);

/* Write the Cobalt sched/stat text (exact kernel format) to `out`. */
void rt_print_xenomai_stat(const struct rt_table *table, FILE *out);
int rt_render_xenomai_stat(const struct rt_table *table);

#endif
