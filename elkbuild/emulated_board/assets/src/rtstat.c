/*
 * rtstat: the emulated board's stand-in for the kernel's real-time statistics.
 *
 * As `rtstat` it manages the thread table (boot, profile switch, add/raise/remove
 * rows); called as `evl` it prints `evl ps` in libevl's column layout, the way
 * Elk Audio OS 1.x shows in-band switches (ISW). On the 0.11 profile the table is
 * rendered to /proc/xenomai/sched/stat instead (through libelk-procshim.so).
 */
#define _GNU_SOURCE
#include "rt_table.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EVL_BIN "/usr/bin/evl"
#define EVL_TOOL "/usr/lib/elk-board/rtstat"
#define BOARD_CPUS 4

static int fail(const char *what)
{
    fprintf(stderr, "rtstat: %s: %s\n", what, strerror(errno));
    return 1;
}

/* Members of group xenomai (mind, Sushi) may update the real-time state, as on
 * Elk where that group grants access to the real-time core. */
static void shared_dir(const char *path)
{
    struct group *xenomai = getgrnam("xenomai");
    mkdir(path, 02775);
    if (xenomai && getuid() == 0) {
        if (chown(path, 0, xenomai->gr_gid) != 0)
            return;
        chmod(path, 02775);
    }
}

static void mkdirs(const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            shared_dir(buf);
            *p = '/';
        }
    }
    shared_dir(buf);
}

static int remove_tree(const char *path)
{
    /* Only ever the small proc/xenomai tree this tool made. */
    char sub[512];
    snprintf(sub, sizeof sub, "%s/sched/stat", path);
    unlink(sub);
    snprintf(sub, sizeof sub, "%s/sched", path);
    rmdir(sub);
    snprintf(sub, sizeof sub, "%s/version", path);
    unlink(sub);
    return rmdir(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* Make the board look like the chosen Elk Audio OS release. */
static int apply_profile(const char *profile, const struct rt_table *table)
{
    FILE *f;

    if (strcmp(profile, "0.11") != 0 && strcmp(profile, "1.x") != 0) {
        fprintf(stderr, "rtstat: profile must be 0.11 or 1.x, not '%s'\n", profile);
        return 2;
    }
    f = fopen(RT_PROFILE_FILE ".tmp", "w");
    if (!f)
        return fail(RT_PROFILE_FILE);
    fprintf(f, "%s\n", profile);
    fclose(f);
    if (rename(RT_PROFILE_FILE ".tmp", RT_PROFILE_FILE) != 0)
        return fail(RT_PROFILE_FILE);

    if (strcmp(profile, "0.11") == 0) {
        /* Xenomai 3: Cobalt's procfs tree exists, the EVL tool does not. */
        mkdirs(RT_XENOMAI_DIR "/sched");
        f = fopen(RT_XENOMAI_DIR "/version", "w");
        if (f) {
            fputs("3.1\n", f);
            fclose(f);
        }
        unlink(EVL_BIN);
        if (rt_render_xenomai_stat(table) != 0)
            return fail(RT_XENOMAI_STAT);
    } else {
        /* Xenomai 4: no /proc/xenomai; `evl ps` reports the threads. */
        if (remove_tree(RT_XENOMAI_DIR) != 0)
            return fail(RT_XENOMAI_DIR);
        unlink(EVL_BIN);
        if (symlink(EVL_TOOL, EVL_BIN) != 0)
            return fail(EVL_BIN);
    }
    return 0;
}

static void seed_kernel_rows(struct rt_table *table)
{
    char name[64];
    for (int cpu = 0; cpu < BOARD_CPUS; cpu++) {
        struct rt_thread *t;
        snprintf(name, sizeof name, "ROOT/%d", cpu);
        t = rt_add(table, name, 0, cpu, RT_KERNEL);
        t->csw = 1000 + 17 * (unsigned long)cpu;
        t->state = 0x00018000;
        t->pct_tenths = 990;
    }
    for (int cpu = 0; cpu < BOARD_CPUS; cpu++) {
        struct rt_thread *t;
        snprintf(name, sizeof name, "IRQ%d: [timer/%d]", 4355 + cpu, cpu);
        t = rt_add(table, name, 0, cpu, RT_KERNEL);
        t->csw = 500 + 11 * (unsigned long)cpu;
        t->pct_tenths = 2;
    }
}

static int parse_count(const char *text, unsigned long *out)
{
    char *end;
    errno = 0;
    *out = strtoul(text, &end, 10);
    return errno == 0 && *end == '\0' && text[0] != '-';
}

static int usage(void)
{
    fprintf(stderr,
            "usage: rtstat boot <0.11|1.x>       reset the table and apply a profile\n"
            "       rtstat profile [0.11|1.x]    show or switch the OS profile\n"
            "       rtstat add NAME [--pid N] [--cpu N] [--msw N] [--kernel]\n"
            "       rtstat raise NAME [COUNT]    add COUNT mode switches to NAME's rows\n"
            "       rtstat remove NAME | --pid N\n"
            "       rtstat show                  the table, Cobalt layout\n");
    return 2;
}

static int cmd_add(int argc, char **argv, struct rt_table *table)
{
    static const struct option opts[] = {
        {"pid", required_argument, 0, 'p'}, {"cpu", required_argument, 0, 'c'},
        {"msw", required_argument, 0, 'm'}, {"kernel", no_argument, 0, 'k'},
        {"cpu-percent", required_argument, 0, 'u'}, {0, 0, 0, 0}};
    unsigned long pid = 0, cpu = 0, msw = 0, tenths = 0;
    int kernel = 0, c;
    struct rt_thread *t;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        unsigned long *target = c == 'p' ? &pid : c == 'c' ? &cpu : c == 'm' ? &msw
                                                : c == 'u' ? &tenths : NULL;
        if (c == 'k') {
            kernel = 1;
            continue;
        }
        if (!target || !parse_count(optarg, target))
            return usage();
    }
    if (optind != argc - 1 || argv[optind][0] == '\0')
        return usage();
    t = rt_add(table, argv[optind], (int)pid, (int)cpu, kernel);
    if (!t) {
        fprintf(stderr, "rtstat: the table is full\n");
        return 1;
    }
    t->msw = msw;
    t->csw = 1;
    t->state = kernel ? 0x00018000 : 0x00048046;
    t->pct_tenths = (int)tenths;
    return 0;
}

static int cmd_raise(int argc, char **argv, struct rt_table *table)
{
    unsigned long count = 1;
    int found = 0;

    if (argc < 2 || argc > 3 || (argc == 3 && !parse_count(argv[2], &count)))
        return usage();
    for (int i = 0; i < table->count; i++) {
        if (strcmp(table->rows[i].name, argv[1]) == 0) {
            table->rows[i].msw += count;
            found++;
        }
    }
    if (!found) {
        fprintf(stderr, "rtstat: no real-time thread named '%s'\n", argv[1]);
        return 1;
    }
    return 0;
}

static int cmd_remove(int argc, char **argv, struct rt_table *table)
{
    unsigned long pid;
    if (argc == 3 && strcmp(argv[1], "--pid") == 0 && parse_count(argv[2], &pid))
        return rt_remove_pid(table, (int)pid) ? 0 : 1;
    if (argc == 2)
        return rt_remove_name(table, argv[1]) ? 0 : 1;
    return usage();
}

/* `evl ps`, column for column as libevl's utils/evl-ps.c prints it. */
#define SHOW_STATE 1
#define SHOW_TIMES 2
#define SHOW_SCHED 4
#define SHOW_LONG 16

static int compare_pid(const void *a, const void *b)
{
    return ((const struct rt_thread *)a)->pid - ((const struct rt_thread *)b)->pid;
}

static int evl_ps(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state", no_argument, 0, 's'}, {"times", no_argument, 0, 't'},
        {"policy", no_argument, 0, 'p'}, {"long", no_argument, 0, 'l'},
        {"numeric", no_argument, 0, 'n'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    static struct rt_table table;
    int format = 0, numeric = 0, c, fd;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hnlstp", opts, NULL)) != -1) {
        switch (c) {
        case 's': format |= SHOW_STATE; break;
        case 't': format |= SHOW_TIMES; break;
        case 'p': format |= SHOW_SCHED; break;
        case 'l': format |= SHOW_LONG; break;
        case 'n': numeric = 1; break;
        case 'h':
            fprintf(stderr, "usage: evl ps [-s|-t|-p|-l|-n]\n");
            return 0;
        default:
            fprintf(stderr, "usage: evl ps [-s|-t|-p|-l|-n]\n");
            return 1;
        }
    }
    if (!format)
        format = SHOW_SCHED;

    fd = rt_lock();
    if (fd < 0 || rt_load(&table) != 0) {
        rt_unlock(fd);
        return fail(RT_TABLE_FILE);
    }
    rt_unlock(fd);
    qsort(table.rows, (size_t)table.count, sizeof table.rows[0], compare_pid);

    printf("%-6s%-6s", "CPU", "PID");
    if (format & (SHOW_SCHED | SHOW_LONG))
        printf("%-8s%-6s", "SCHED", "PRIO");
    if (format & (SHOW_STATE | SHOW_LONG))
        printf("%-8s%-10s%-10s%-10s%-9s", "ISW", "CTXSW", "SYS", "RWA", "STAT");
    if (format & (SHOW_TIMES | SHOW_LONG))
        printf("%-13s%-7s   %-14s", "TIMEOUT", "%CPU", "CPUTIME");
    printf("NAME\n");

    for (int i = 0; i < table.count; i++) {
        const struct rt_thread *t = &table.rows[i];
        printf("%3d   %-6d", t->cpu, t->pid);
        if (format & (SHOW_SCHED | SHOW_LONG))
            printf("%5s   %3d   ", "fifo", t->prio);
        if (format & (SHOW_STATE | SHOW_LONG)) {
            printf("%-8ld%-10ld%-10ld%-10ld", (long)t->msw, (long)t->csw, (long)t->xsc,
                   (long)t->rwa);
            if (numeric)
                printf(" %-8x", t->state);
            else
                printf(" %-8s", t->kernel == RT_KERNEL ? "" : "W");
        }
        if (format & (SHOW_TIMES | SHOW_LONG)) {
            /* CPU time grows with the context switches: 1.33 ms periods. */
            unsigned long long ns = (unsigned long long)t->csw * 1333333ULL
                                    * (unsigned long long)t->pct_tenths / 1000ULL;
            printf("%-13s", "   -");
            printf("%3u.%u  ", (unsigned)t->pct_tenths / 10, (unsigned)t->pct_tenths % 10);
            printf("%5d:%.3d.%.3d    ", (int)(ns / 1000000000ULL),
                   (int)(ns % 1000000000ULL / 1000000ULL), (int)(ns % 1000000ULL / 1000ULL));
        }
        if (t->kernel == RT_KERNEL)
            printf("[%s]\n", t->name);
        else
            printf("%s\n", t->name);
    }
    return 0;
}

static int evl_main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "ps") == 0)
        return evl_ps(argc - 1, argv + 1);
    fprintf(stderr, "usage: evl ps [options]   (the emulated board implements `ps` only)\n");
    return 1;
}

int main(int argc, char **argv)
{
    static struct rt_table table;
    const char *cmd;
    int fd, rc;

    if (strcmp(basename(argv[0]), "evl") == 0)
        return evl_main(argc, argv);
    if (argc < 2)
        return usage();
    cmd = argv[1];

    if (strcmp(cmd, "boot") == 0 || strcmp(cmd, "profile") == 0) {
        mkdirs(RT_STATE_DIR "/rt");
        if (getuid() == 0)
            chmod(RT_STATE_DIR, 0755);
    }
    fd = rt_lock();
    if (fd >= 0 && getuid() == 0)
        fchmod(fd, 0666);
    if (fd < 0)
        return fail(RT_LOCK_FILE);
    if (rt_load(&table) != 0) {
        rt_unlock(fd);
        return fail(RT_TABLE_FILE);
    }

    if (strcmp(cmd, "boot") == 0 && argc == 3) {
        table.count = 0;
        seed_kernel_rows(&table);
        rc = rt_save(&table) != 0 ? fail(RT_TABLE_FILE) : apply_profile(argv[2], &table);
    } else if (strcmp(cmd, "profile") == 0 && argc == 2) {
        printf("%s\n", rt_profile());
        rc = 0;
    } else if (strcmp(cmd, "profile") == 0 && argc == 3) {
        rc = apply_profile(argv[2], &table);
    } else if (strcmp(cmd, "show") == 0) {
        rt_print_xenomai_stat(&table, stdout);
        rc = 0;
    } else {
        if (strcmp(cmd, "add") == 0)
            rc = cmd_add(argc - 1, argv + 1, &table);
        else if (strcmp(cmd, "raise") == 0)
            rc = cmd_raise(argc - 1, argv + 1, &table);
        else if (strcmp(cmd, "remove") == 0)
            rc = cmd_remove(argc - 1, argv + 1, &table);
        else
            rc = usage();
        if (rc == 0 && rt_save(&table) != 0)
            rc = fail(RT_TABLE_FILE);
    }
    rt_unlock(fd);
    return rc;
}
