/* The emulated board's real-time thread table: see rt_table.h. */
#define _GNU_SOURCE
#include "rt_table.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int rt_lock(void)
{
    int fd = open(RT_LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        fd = open(RT_LOCK_FILE, O_RDONLY | O_CLOEXEC); /* readers: an flock needs no write */
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

void rt_unlock(int fd)
{
    if (fd >= 0) {
        flock(fd, LOCK_UN);
        close(fd);
    }
}

const char *rt_profile(void)
{
    static char profile[16];
    FILE *f = fopen(RT_PROFILE_FILE, "r");
    strcpy(profile, "1.x");
    if (f) {
        if (fgets(profile, sizeof profile, f))
            profile[strcspn(profile, "\r\n")] = '\0';
        fclose(f);
    }
    return profile;
}

static int thread_alive(int tid)
{
    char path[32];
    snprintf(path, sizeof path, "/proc/%d", tid); /* TIDs resolve there too */
    return tid > 0 && access(path, F_OK) == 0;
}

int rt_load(struct rt_table *table)
{
    char line[512];
    FILE *f;

    table->count = 0;
    f = fopen(RT_TABLE_FILE, "r");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    while (fgets(line, sizeof line, f) && table->count < RT_MAX_THREADS) {
        struct rt_thread *t = &table->rows[table->count];
        int used = 0;
        memset(t, 0, sizeof *t);
        /* Tab separated; the name is last because it may contain spaces. */
        if (sscanf(line, "%d\t%d\t%lu\t%lu\t%lu\t%lu\t%lu\t%x\t%d\t%d\t%d\t%n",
                   &t->pid, &t->cpu, &t->msw, &t->csw, &t->xsc, &t->pf, &t->rwa,
                   &t->state, &t->pct_tenths, &t->kernel, &t->prio, &used) < 11)
            continue;
        line[strcspn(line, "\n")] = '\0';
        snprintf(t->name, sizeof t->name, "%s", line + used);
        if (t->kernel == RT_LIVE && !thread_alive(t->pid))
            continue;
        table->count++;
    }
    fclose(f);
    return 0;
}

static int write_atomically(const char *path, void (*fill)(const struct rt_table *, FILE *),
                            const struct rt_table *table)
{
    char tmp[256];
    FILE *f;

    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    f = fopen(tmp, "w");
    if (!f)
        return -1;
    fill(table, f);
    if (fclose(f) != 0) {
        unlink(tmp);
        return -1;
    }
    chmod(tmp, 0664);
    return rename(tmp, path);
}

static void fill_table(const struct rt_table *table, FILE *f)
{
    for (int i = 0; i < table->count; i++) {
        const struct rt_thread *t = &table->rows[i];
        fprintf(f, "%d\t%d\t%lu\t%lu\t%lu\t%lu\t%lu\t%x\t%d\t%d\t%d\t%s\n",
                t->pid, t->cpu, t->msw, t->csw, t->xsc, t->pf, t->rwa, t->state,
                t->pct_tenths, t->kernel, t->prio, t->name);
    }
}

void rt_print_xenomai_stat(const struct rt_table *table, FILE *out)
{
    /* Column layout of Cobalt's sched/stat vfile. */
    fprintf(out, "%-3s  %-6s %-10s %-10s %-10s %-4s  %-8s  %5s  %s\n",
            "CPU", "PID", "MSW", "CSW", "XSC", "PF", "STAT", "%CPU", "NAME");
    for (int i = 0; i < table->count; i++) {
        const struct rt_thread *t = &table->rows[i];
        fprintf(out, "%3u  %-6d %-10lu %-10lu %-10lu %-4lu  %.8x  %3u.%u  %s%s%s\n",
                (unsigned)t->cpu, t->pid, t->msw, t->csw, t->xsc, t->pf, t->state,
                (unsigned)t->pct_tenths / 10, (unsigned)t->pct_tenths % 10,
                t->kernel == RT_KERNEL ? "[" : "", t->name, t->kernel == RT_KERNEL ? "]" : "");
    }
}

int rt_render_xenomai_stat(const struct rt_table *table)
{
    if (strcmp(rt_profile(), "0.11") != 0)
        return 0;
    return write_atomically(RT_XENOMAI_STAT, rt_print_xenomai_stat, table);
}

int rt_save(const struct rt_table *table)
{
    if (write_atomically(RT_TABLE_FILE, fill_table, table) != 0)
        return -1;
    return rt_render_xenomai_stat(table);
}

struct rt_thread *rt_add(struct rt_table *table, const char *name, int pid, int cpu,
                         int kernel)
{
    struct rt_thread *t;

    if (table->count >= RT_MAX_THREADS)
        return NULL;
    t = &table->rows[table->count++];
    memset(t, 0, sizeof *t);
    t->pid = pid;
    t->cpu = cpu;
    t->kernel = kernel;
    snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

static void drop(struct rt_table *table, int index)
{
    memmove(&table->rows[index], &table->rows[index + 1],
            (size_t)(table->count - index - 1) * sizeof table->rows[0]);
    table->count--;
}

int rt_remove_pid(struct rt_table *table, int pid)
{
    int removed = 0;
    for (int i = table->count - 1; i >= 0; i--) {
        if (table->rows[i].pid == pid) {
            drop(table, i);
            removed++;
        }
    }
    return removed;
}

int rt_remove_name(struct rt_table *table, const char *name)
{
    int removed = 0;
    for (int i = table->count - 1; i >= 0; i--) {
        if (strcmp(table->rows[i].name, name) == 0) {
            drop(table, i);
            removed++;
        }
    }
    return removed;
}
