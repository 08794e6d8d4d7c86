/*
 * sushi_b64: the emulated Elk board's stand-in for Sushi, Elk's plugin host.
 *
 * It does what a deploy and a monitor can observe of Sushi: the command line,
 * the JSON config checks, every plugin's bundle checked for an aarch64 VST3
 * binary, a log in Sushi's format, a process that runs until stopped, and, with
 * the RASPA (-r) frontend, real-time threads in the Xenomai/EVL statistics. It
 * processes no audio and loads no plugin code (see README.md).
 */
#define _GNU_SOURCE
#include "json.h"
#include "rt_table.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EM_AARCH64_ID 183
#define AUDIO_THREAD_NAME "sushi_rt_audio"
#define MAIN_THREAD_NAME "sushi_b64"
#define WORKER_THREAD_NAME "sushi_rt_worker"
#define BUFFER_SIZE 64
#define SAMPLE_RATE 48000
/* Xenomai/EVL context switches per second of a 64-sample period at 48 kHz. */
#define PERIODS_PER_SECOND (SAMPLE_RATE / BUFFER_SIZE)

enum level { L_DEBUG, L_INFO, L_WARNING, L_ERROR, L_CRITICAL };
static const char *level_names[] = {"debug", "info", "warning", "error", "critical"};

static FILE *log_file;
static enum level min_level = L_INFO;
static int legacy; /* the 0.11 profile: Sushi 0.11's options and config format */

static volatile sig_atomic_t exit_requested;
static volatile sig_atomic_t mode_switch_pending;
static volatile int audio_tid;
static int debug_mode_sw;

/* ------------------------------------------------------------------ logging */

static void log_line(enum level level, const char *module, const char *fmt, ...)
{
    char when[32];
    struct timeval tv;
    struct tm tm;
    va_list args;

    if (!log_file || level < min_level)
        return;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    /* spdlog pattern "[%Y-%m-%d %T.%e] [%l] %v", the module as "[name] " prefix. */
    fprintf(log_file, "[%s.%03d] [%s] ", when, (int)(tv.tv_usec / 1000), level_names[level]);
    if (module)
        fprintf(log_file, "[%s] ", module);
    va_start(args, fmt);
    vfprintf(log_file, fmt, args);
    va_end(args);
    fputc('\n', log_file);
    fflush(log_file);
}

static int open_log(const char *path, const char *level)
{
    int known = 0;
    for (int i = 0; i <= L_CRITICAL; i++) {
        if (strcasecmp(level, level_names[i]) == 0) {
            min_level = (enum level)i;
            known = 1;
        }
    }
    log_file = fopen(path, "a");
    if (!log_file) {
        fprintf(stderr, "Failed to start logger, using default.\n");
        log_file = stderr;
    } else if (!known) {
        fprintf(stderr, "Invalid Log Level, using default.\n");
    }
    log_line(L_WARNING, NULL, "#############################");
    log_line(L_WARNING, NULL, "   Started Sushi Logger!");
    log_line(L_WARNING, NULL, "#############################");
    return 0;
}

/* A failure Sushi reports with one line on stderr and a non-zero exit. */
static void error_exit(const char *message, int status)
{
    fprintf(stderr, "%s\n", message);
    exit(status);
}

/* ------------------------------------------------------------------ plugin bundles */

static int read_elf_machine(const char *path, int *is64, int *machine, char *why, size_t n)
{
    unsigned char header[20];
    FILE *f = fopen(path, "rb");

    if (!f) {
        snprintf(why, n, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (fread(header, 1, sizeof header, f) != sizeof header ||
        memcmp(header, "\177ELF", 4) != 0) {
        fclose(f);
        snprintf(why, n, "%s is not an ELF shared library", path);
        return -1;
    }
    fclose(f);
    *is64 = header[4] == 2;
    /* e_machine, little-endian for every target a board can have. */
    *machine = header[18] | (header[19] << 8);
    return 0;
}

static const char *machine_name(int machine)
{
    switch (machine) {
    case 3: return "x86 (32-bit)";
    case 40: return "ARM (32-bit)";
    case 62: return "x86-64";
    case EM_AARCH64_ID: return "AArch64";
    default: return "an unknown machine";
    }
}

/* Sushi resolves a relative plugin path against --base-plugin-path (1.x) or
 * against its working directory (0.11). */
static void resolve_path(const char *path, const char *base, char *out, size_t n)
{
    if (path[0] == '/' || !base)
        snprintf(out, n, "%s", path);
    else
        snprintf(out, n, "%s/%s", base, path);
}

/* Checks a VST3 bundle the way a Linux VST3 host finds its binary:
 * <bundle>/Contents/aarch64-linux/<bundle name without .vst3>.so, an ELF64 for
 * AArch64. Returns 0, or -1 with the reason in `why`. */
static int check_vst3_bundle(const char *bundle, char *why, size_t n)
{
    char stem[PATH_MAX], binary[PATH_MAX * 2], other[PATH_MAX * 2];
    const char *base = strrchr(bundle, '/');
    struct stat st;
    size_t len;
    int is64 = 0, machine = 0;

    if (stat(bundle, &st) != 0) {
        snprintf(why, n, "Could not find plugin bundle %s: %s", bundle, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, n, "%s is not a VST3 bundle (a directory named <name>.vst3)", bundle);
        return -1;
    }
    base = base ? base + 1 : bundle;
    snprintf(stem, sizeof stem, "%s", base);
    len = strlen(stem);
    while (len > 0 && stem[len - 1] == '/')
        stem[--len] = '\0';
    if (len > 5 && strcmp(stem + len - 5, ".vst3") == 0)
        stem[len - 5] = '\0';
    snprintf(binary, sizeof binary, "%s/Contents/aarch64-linux/%s.so", bundle, stem);
    if (stat(binary, &st) != 0) {
        /* JUCE 6 names the folder arm64-linux; Sushi looks for aarch64-linux only. */
        snprintf(other, sizeof other, "%s/Contents/arm64-linux/%s.so", bundle, stem);
        if (stat(other, &st) == 0)
            snprintf(why, n, "Could not find %s (the bundle has Contents/arm64-linux: "
                     "rename that folder to aarch64-linux)", binary);
        else
            snprintf(why, n, "Could not find %s: %s", binary, strerror(ENOENT));
        return -1;
    }
    if (read_elf_machine(binary, &is64, &machine, why, n) != 0)
        return -1;
    if (!is64 || machine != EM_AARCH64_ID) {
        snprintf(why, n, "%s is built for %s%s, not AArch64: dlopen failed (wrong ELF class "
                 "or machine)", binary, machine_name(machine), is64 ? "" : " 32-bit");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ config */

static int is_internal_uid(const char *uid)
{
    return strncmp(uid, "sushi.", 6) == 0;
}

struct plugin_entry {
    char name[128];
    char label[128];
    int track;
    char vst3_path[PATH_MAX]; /* the resolved bundle of a vst3x plugin, else empty */
};

static struct plugin_entry plugins[256];
static int plugin_count;

static int schema_failure(const char *pointer)
{
    log_line(L_ERROR, "jsonconfig", "Schema validation failure at %s", pointer);
    return -1;
}

static int load_plugin(const struct json *def, const char *pointer, const char *track_name,
                       int track_index, const char *base_plugin_path)
{
    const char *type = json_string(def, "type"), *name = json_string(def, "name");
    const char *uid = json_string(def, "uid"), *path = json_string(def, "path");
    const char *uri = json_string(def, "uri");
    char resolved[PATH_MAX], why[PATH_MAX * 3], where[256];

    if (!type || !name) {
        snprintf(where, sizeof where, "%s/%s", pointer, !type ? "type" : "name");
        return schema_failure(where);
    }
    if (strcmp(type, "internal") == 0) {
        if (!uid) {
            snprintf(where, sizeof where, "%s/uid", pointer);
            return schema_failure(where);
        }
        if (!is_internal_uid(uid)) {
            log_line(L_ERROR, "engine", "Unrecognised internal plugin \"%s\"", uid);
            log_line(L_ERROR, "jsonconfig", "Invalid plugin uid %s in JSON config file", uid);
            return -1;
        }
    } else if (strcmp(type, "vst3x") == 0) {
        if (!uid || !path) {
            snprintf(where, sizeof where, "%s/%s", pointer, !uid ? "uid" : "path");
            return schema_failure(where);
        }
        resolve_path(path, base_plugin_path, resolved, sizeof resolved);
        if (check_vst3_bundle(resolved, why, sizeof why) != 0) {
            log_line(L_ERROR, "vst3", "Failed to load VST3 Module: %s", why);
            log_line(L_ERROR, "engine", "Failed to load plugin %s (uid \"%s\", path \"%s\")",
                     name, uid, resolved);
            return -1;
        }
        log_line(L_INFO, "vst3", "Loading plugin %s from %s", uid, resolved);
        log_line(L_INFO, "vst3", "Creating plugin %s", uid);
    } else if (strcmp(type, "vst2x") == 0 || strcmp(type, "lv2") == 0) {
        const char *target = strcmp(type, "lv2") == 0 ? uri : path;
        struct stat st;
        if (!target) {
            snprintf(where, sizeof where, "%s/%s", pointer, strcmp(type, "lv2") == 0 ? "uri"
                                                                                       : "path");
            return schema_failure(where);
        }
        resolve_path(target, base_plugin_path, resolved, sizeof resolved);
        if (strcmp(type, "vst2x") == 0 && stat(resolved, &st) != 0) {
            log_line(L_ERROR, "vst2", "Could not load VST2 plugin %s: %s", resolved,
                     strerror(errno));
            return -1;
        }
    } else {
        snprintf(where, sizeof where, "%s/type", pointer);
        return schema_failure(where);
    }
    if (plugin_count < (int)(sizeof plugins / sizeof plugins[0])) {
        struct plugin_entry *p = &plugins[plugin_count++];
        snprintf(p->name, sizeof p->name, "%s", name);
        snprintf(p->label, sizeof p->label, "%s", uid ? uid : name);
        p->track = track_index;
        snprintf(p->vst3_path, sizeof p->vst3_path, "%s",
                 strcmp(type, "vst3x") == 0 ? resolved : "");
    }
    log_line(L_DEBUG, "jsonconfig", "Successfully added Plugin \"%s\" to Chain \"%s\"", name,
             track_name);
    return 0;
}

/* A track of "tracks" (index >= 0), or the 1.x "pre_track"/"post_track" master
 * tracks (index < 0, `pointer` names them), which hold only a name and plugins. */
static int load_track(const struct json *track, int index, const char *master,
                      const char *base_plugin_path)
{
    char pointer[64], where[128];
    const char *name = json_string(track, "name");
    const struct json *plugin_list = json_get(track, "plugins");
    int i = 0;

    if (master)
        snprintf(pointer, sizeof pointer, "/%s", master);
    else
        snprintf(pointer, sizeof pointer, "/tracks/%d", index);
    if (!name) {
        snprintf(where, sizeof where, "%s/name", pointer);
        return schema_failure(where);
    }
    if (master) {
        /* no channel layout or connections of their own */
    } else if (legacy) {
        /* Sushi 0.11: "mode": mono | stereo | multibus, with input/output_busses. */
        const char *mode = json_string(track, "mode");
        if (!mode || (strcmp(mode, "mono") && strcmp(mode, "stereo") && strcmp(mode, "multibus"))) {
            snprintf(where, sizeof where, "%s/mode", pointer);
            return schema_failure(where);
        }
    } else {
        /* Sushi 1.x: "channels": N, or "multibus": true with "buses": N. */
        const struct json *channels = json_get(track, "channels");
        const struct json *multibus = json_get(track, "multibus");
        if (json_get(track, "mode")) {
            snprintf(where, sizeof where, "%s/mode", pointer);
            return schema_failure(where);
        }
        if (!(channels && channels->type == JSON_NUMBER) &&
            !(multibus && multibus->type == JSON_BOOL && json_get(track, "buses"))) {
            snprintf(where, sizeof where, "%s/channels", pointer);
            return schema_failure(where);
        }
    }
    if (!master && (!json_get(track, "inputs") || !json_get(track, "outputs"))) {
        snprintf(where, sizeof where, "%s/%s", pointer, json_get(track, "inputs") ? "outputs"
                                                                                  : "inputs");
        return schema_failure(where);
    }
    if (!plugin_list || plugin_list->type != JSON_ARRAY) {
        snprintf(where, sizeof where, "%s/plugins", pointer);
        return schema_failure(where);
    }
    for (const struct json *def = plugin_list->child; def; def = def->next, i++) {
        char plugin_pointer[96];
        snprintf(plugin_pointer, sizeof plugin_pointer, "%s/plugins/%d", pointer, i);
        if (load_plugin(def, plugin_pointer, name, index, base_plugin_path) != 0)
            return -1;
    }
    log_line(L_INFO, "engine", "Track %s successfully added to engine", name);
    return 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text;
    long size;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc((size_t)size + 1);
    if (text && fread(text, 1, (size_t)size, f) != (size_t)size) {
        free(text);
        text = NULL;
    }
    if (text)
        text[size] = '\0';
    fclose(f);
    return text;
}

static struct json *load_config(const char *path, const char *base_plugin_path, int *samplerate)
{
    const char *error = NULL;
    size_t offset = 0;
    char *text = read_file(path);
    struct json *root, *host, *rate, *tracks;
    int index = 0;

    if (!text) {
        log_line(L_ERROR, "jsonconfig", "Invalid file passed to JsonConfigurator %s", path);
        char message[PATH_MAX + 64];
        snprintf(message, sizeof message, "Error reading config file, invalid file path: %s",
                 path);
        error_exit(message, 1);
    }
    root = json_parse(text, &error, &offset);
    if (!root) {
        size_t from = offset > 20 ? offset - 20 : 0;
        log_line(L_ERROR, "jsonconfig", "Error parsing JSON config file: %s @ pos %zu: \"%.*s\"",
                 error, offset, (int)(offset - from), text + from);
        error_exit("Error reading host config, check logs for details.", 1);
    }
    free(text);
    host = json_get(root, "host_config");
    rate = json_get(host, "samplerate");
    if (!host || !rate || rate->type != JSON_NUMBER) {
        schema_failure(!host ? "/host_config" : "/host_config/samplerate");
        error_exit("Failed to load host configuration from config file.", 1);
    }
    *samplerate = (int)rate->number;
    log_line(L_INFO, "jsonconfig", "Setting engine sample rate to %d", *samplerate);

    tracks = json_get(root, "tracks");
    if (!tracks) {
        log_line(L_INFO, "jsonconfig", "Config file does not have any Track definitions");
        return root;
    }
    if (tracks->type != JSON_ARRAY) {
        schema_failure("/tracks");
        error_exit("Failed to load tracks from the Json config file.", 1);
    }
    for (const struct json *track = tracks->child; track; track = track->next, index++) {
        if (load_track(track, index, NULL, base_plugin_path) != 0)
            error_exit("Failed to load tracks from the Json config file.", 1);
    }
    for (int m = 0; m < 2; m++) {
        const char *key = m == 0 ? "pre_track" : "post_track";
        const struct json *master = json_get(root, key);
        if (!master)
            continue;
        if (legacy || master->type != JSON_OBJECT) {
            schema_failure(m == 0 ? "/pre_track" : "/post_track");
            error_exit("Failed to load tracks from the Json config file.", 1);
        }
        if (load_track(master, -1, key, base_plugin_path) != 0)
            error_exit("Failed to load tracks from the Json config file.", 1);
    }
    log_line(L_INFO, "jsonconfig",
             "Successfully configured engine with tracks in JSON config file \"%s\"", path);
    return root;
}

static void dump_plugins(void)
{
    printf("{\n    \"plugins\": [");
    for (int i = 0; i < plugin_count; i++) {
        printf("%s\n        {\n            \"name\": \"%s\",\n            \"label\": \"%s\",\n"
               "            \"processor_id\": %d,\n            \"parent_track_id\": %d,\n"
               "            \"parameters\": []\n        }",
               i ? "," : "", plugins[i].name, plugins[i].label, i + 100, plugins[i].track);
    }
    printf("\n    ]\n}\n");
}

/* ------------------------------------------------------------------ real-time threads */

#define MAX_WORKERS 16

/* The worker pool `-m N` adds: real threads, idle in the emulation. */
struct worker {
    pthread_t thread;
    int index;
    int tid;
};
static struct worker workers[MAX_WORKERS];

static int gettid_now(void)
{
    return (int)syscall(SYS_gettid);
}

static void register_rt_thread(const char *name, int tid, int cpu, unsigned long msw,
                               int tenths)
{
    static struct rt_table table;
    int fd = rt_lock();
    struct rt_thread *t;

    if (fd < 0 || rt_load(&table) != 0) {
        rt_unlock(fd);
        return;
    }
    rt_remove_pid(&table, tid);
    t = rt_add(&table, name, tid, cpu, RT_LIVE);
    if (t) {
        t->msw = msw;
        t->state = 0x00048046;
        t->pct_tenths = tenths;
        t->prio = 75;
    }
    rt_save(&table);
    rt_unlock(fd);
}

/* Advances the counters of this process' rows; returns the audio thread's MSW. */
static unsigned long tick_rt_threads(unsigned long seconds_tenths)
{
    static struct rt_table table;
    unsigned long audio_msw = 0;
    int fd = rt_lock();
    pid_t pid = getpid();

    if (fd < 0 || rt_load(&table) != 0) {
        rt_unlock(fd);
        return 0;
    }
    for (int i = 0; i < table.count; i++) {
        struct rt_thread *t = &table.rows[i];
        int ours = t->pid == pid || t->pid == audio_tid;
        for (int w = 1; w < MAX_WORKERS && !ours; w++)
            ours = workers[w].tid && t->pid == workers[w].tid;
        if (!ours)
            continue;
        if (t->pid == audio_tid) {
            t->csw += PERIODS_PER_SECOND * seconds_tenths / 10;
            t->xsc += 2 * PERIODS_PER_SECOND * seconds_tenths / 10;
            audio_msw = t->msw;
        } else {
            t->csw += seconds_tenths;
        }
    }
    rt_save(&table);
    rt_unlock(fd);
    return audio_msw;
}

static void unregister_rt_threads(const int *tids, int count)
{
    static struct rt_table table;
    int fd = rt_lock();
    if (fd < 0 || rt_load(&table) != 0) {
        rt_unlock(fd);
        return;
    }
    for (int i = 0; i < count; i++)
        rt_remove_pid(&table, tids[i]);
    rt_save(&table);
    rt_unlock(fd);
}

/* With --debug-mode-sw, Sushi asks Xenomai to send SIGXCPU to an audio thread
 * that leaves the real-time domain, so a debugger stops right at the culprit. */
static void __attribute__((noinline)) report_mode_switch(void)
{
    if (debug_mode_sw)
        pthread_kill(pthread_self(), SIGXCPU);
}

static void __attribute__((noinline)) process_audio_block(void)
{
    if (mode_switch_pending) {
        mode_switch_pending = 0;
        report_mode_switch();
    }
}


static void *worker_thread_main(void *arg)
{
    struct worker *self = arg;
    struct timespec nap = {0, 50 * 1000 * 1000};
    char name[32];
    self->tid = gettid_now();
    snprintf(name, sizeof name, "%s_%d", WORKER_THREAD_NAME, self->index);
    pthread_setname_np(pthread_self(), name);
    register_rt_thread(name, self->tid, self->index % 4, 0, 120);
    while (!exit_requested)
        nanosleep(&nap, NULL);
    return NULL;
}

static void *audio_thread_main(void *arg)
{
    struct timespec period = {0, 10 * 1000 * 1000};
    audio_tid = gettid_now();
    pthread_setname_np(pthread_self(), AUDIO_THREAD_NAME);
    register_rt_thread(AUDIO_THREAD_NAME, audio_tid, 0, 0, 345);
    while (!exit_requested) {
        process_audio_block();
        /* Emulation only: a 10 ms nap instead of the 1.33 ms hardware period. */
        nanosleep(&period, NULL);
    }
    return NULL;
}

/* ------------------------------------------------------------------ main */

/* Offline mode runs the input file through the config's VST3 plugins, in the order
 * the config lists them, with elkbuild's VST3 host (the one `invoke rt-check` uses),
 * built for aarch64: the deployed binaries really load and process here. Internal
 * plugins are passed through, and tracks are chained rather than mixed. */
#define VST3_HOST "/usr/lib/elk-board/vst3host"

static int run_offline(const char *input, const char *output, int samplerate)
{
    char *argv[2 * 256 + 16], rate[32];
    int argc = 0, vst3 = 0, status = 0;
    pid_t child;

    argv[argc++] = (char *)VST3_HOST;
    argv[argc++] = (char *)"process";
    for (int i = 0; i < plugin_count; i++) {
        if (!plugins[i].vst3_path[0])
            continue;
        argv[argc++] = (char *)"--plugin";
        argv[argc++] = plugins[i].vst3_path;
        vst3++;
    }
    snprintf(rate, sizeof rate, "%d", samplerate);
    argv[argc++] = (char *)"--in";
    argv[argc++] = (char *)input;
    argv[argc++] = (char *)"--out";
    argv[argc++] = (char *)output;
    argv[argc++] = (char *)"--block";
    argv[argc++] = (char *)"64";
    argv[argc++] = (char *)"--rate";
    argv[argc++] = rate;
    argv[argc] = NULL;
    log_line(L_INFO, "offline", "Processing %s through %d VST3 plugin(s) into %s", input, vst3,
             output);
    child = fork();
    if (child < 0)
        return -1;
    if (child == 0) {
        execv(VST3_HOST, argv);
        _exit(127);
    }
    if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        log_line(L_ERROR, "offline", "Offline processing failed (status %d)", status);
        return -1;
    }
    return 0;
}

static void on_signal(int sig)
{
    exit_requested = 1;
}

static void usage(void)
{
    printf("SUSHI - stand-in on the emulated Elk board\n\n"
           "Usage: sushi [options]\n"
           "  -r, --raspa                  Xenomai RASPA frontend (real-time threads)\n"
           "  -j, --jack                   JACK frontend\n"
           "  -o, --offline                offline frontend, with -i <in.wav> -O <out.wav>\n"
           "  -d, --dummy                  dummy frontend\n"
           "  -c, --config-file=<file>     JSON configuration [default=config.json]\n"
           "  -m, --multicore-processing=<n>  real-time worker threads\n"
           "      --timing-statistics      log processing time statistics\n"
           "  -l, --log-level=<level>      debug, info, warning, error [default=info]\n"
           "  -L, --log-file=<file>        [default=/tmp/sushi.log]\n"
           "      --debug-mode-sw          SIGXCPU on real-time mode switches\n"
           "      --dump-plugins           print the loaded plugins as JSON and exit\n"
           "      --base-plugin-path=<dir> base of relative plugin paths (Sushi 1.x)\n"
           "  -v, --version                version and build options\n");
}

enum { OPT_TIMING = 1000, OPT_DEBUG_SW, OPT_DUMP, OPT_BASE, OPT_FLUSH, OPT_OSC_SEND,
       OPT_GRPC, OPT_CONNECT, OPT_CLIENT, OPT_SERVER };

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'v'},
        {"raspa", no_argument, 0, 'r'}, {"jack", no_argument, 0, 'j'},
        {"offline", no_argument, 0, 'o'}, {"dummy", no_argument, 0, 'd'},
        {"input", required_argument, 0, 'i'}, {"output", required_argument, 0, 'O'},
        {"config-file", required_argument, 0, 'c'},
        {"multicore-processing", required_argument, 0, 'm'},
        {"log-level", required_argument, 0, 'l'}, {"log-file", required_argument, 0, 'L'},
        {"osc-rcv-port", required_argument, 0, 'p'},
        {"timing-statistics", no_argument, 0, OPT_TIMING},
        {"debug-mode-sw", no_argument, 0, OPT_DEBUG_SW},
        {"dump-plugins", no_argument, 0, OPT_DUMP},
        {"base-plugin-path", required_argument, 0, OPT_BASE},
        {"log-flush-interval", required_argument, 0, OPT_FLUSH},
        {"osc-send-port", required_argument, 0, OPT_OSC_SEND},
        {"grpc-address", required_argument, 0, OPT_GRPC},
        {"connect-ports", no_argument, 0, OPT_CONNECT},
        {"client-name", required_argument, 0, OPT_CLIENT},
        {"server-name", required_argument, 0, OPT_SERVER},
        {0, 0, 0, 0}};
    const char *config = "config.json", *log_path = "/tmp/sushi.log", *level = "info";
    const char *input = NULL, *output = NULL, *base_plugin_path = NULL;
    char frontend = 'd', cwd[PATH_MAX];
    int cores = 1, timing = 0, dump = 0, c, samplerate = SAMPLE_RATE;
    int tids[MAX_WORKERS + 4], tid_count = 0;
    pthread_t audio;
    struct json *root;

    legacy = strcmp(rt_profile(), "0.11") == 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hvrjodi:O:c:m:l:L:p:", options, NULL)) != -1) {
        switch (c) {
        case 'h': usage(); return 0;
        case 'v':
            printf("SUSHI - Copyright 2017-2023 Elk Audio AB, Stockholm\n"
                   "\nVersion %s (emulated board stand-in)\n"
                   "Build options enabled: vst3, xenomai, rpc\n"
                   "Audio buffer size in frames: %d\n", legacy ? "0.11.0" : "1.0.0",
                   BUFFER_SIZE);
            return 0;
        case 'r': case 'j': case 'o': case 'd': frontend = (char)c; break;
        case 'i': input = optarg; break;
        case 'O': output = optarg; break;
        case 'c': config = optarg; break;
        case 'l': level = optarg; break;
        case 'L': log_path = optarg; break;
        case 'm':
            cores = atoi(optarg);
            if (cores < 1) {
                fprintf(stderr, "Invalid number of cores: %s\n", optarg);
                return 1;
            }
            break;
        case OPT_TIMING: timing = 1; break;
        case OPT_DEBUG_SW: debug_mode_sw = 1; break;
        case OPT_DUMP: dump = 1; break;
        case OPT_BASE:
            if (legacy) {
                /* Sushi 0.11 has no such option. */
                fprintf(stderr, "Unknown option: --base-plugin-path\n");
                return 1;
            }
            base_plugin_path = optarg;
            break;
        case 'p': case OPT_FLUSH: case OPT_OSC_SEND: case OPT_GRPC: case OPT_CONNECT:
        case OPT_CLIENT: case OPT_SERVER:
            break;
        default:
            fprintf(stderr, "Unknown option: %s\n", argv[optind - 1]);
            return 1;
        }
    }
    if (!legacy && !base_plugin_path && getcwd(cwd, sizeof cwd))
        base_plugin_path = cwd;

    open_log(log_path, level);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    if (frontend == 'j') {
        log_line(L_INFO, "main", "Setting up Jack audio frontend");
        log_line(L_ERROR, "jack audio", "Failed to open Jack client, status: 17");
        error_exit("Error initializing frontend, check logs for details.", 1);
    }
    if (frontend == 'o' && !input) {
        error_exit("Offline mode needs an input file: -i <in.wav>", 2);
    }
    if (base_plugin_path)
        log_line(L_INFO, "engine", "Setting base plugin path to: %s", base_plugin_path);

    switch (frontend) {
    case 'r': log_line(L_INFO, "main", "Setting up Xenomai RASPA frontend"); break;
    case 'o': log_line(L_INFO, "main", "Setting up offline audio frontend"); break;
    default: log_line(L_INFO, "main", "Setting up dummy audio frontend"); break;
    }
    root = load_config(config, base_plugin_path, &samplerate);
    if (samplerate != SAMPLE_RATE && frontend == 'r')
        log_line(L_WARNING, "raspa audio", "Sample rate mismatch between engine (%d) and Raspa "
                 "(%d)", samplerate, SAMPLE_RATE);

    if (dump) {
        dump_plugins();
        printf("Parameter dump completed - exiting.\n");
        json_free(root);
        return 0;
    }
    printf("SUSHI - Copyright 2017-2023 Elk Audio AB, Stockholm\n"
           "SUSHI is licensed under the Affero GPL 3.0. Source code is available at "
           "github.com/elk-audio\n");
    fflush(stdout);

    if (frontend == 'o') {
        if (access(input, R_OK) != 0)
            error_exit("Error opening input file for offline processing.", 1);
        if (run_offline(input, output ? output : "out.wav", samplerate) != 0)
            error_exit("Error processing the input file offline.", 1);
        log_line(L_INFO, "main", legacy ? "Sushi exited normally." : "Sushi exiting normally!");
        return 0;
    }

    log_line(L_INFO, "main", "Starting gRPC server with address: [::]:51051");
    if (frontend == 'r') {
        /* One or two mode switches at start-up are normal for a Cobalt/EVL app. */
        register_rt_thread(MAIN_THREAD_NAME, getpid(), 0, 2, 1);
        tids[tid_count++] = getpid();
        for (int i = 1; i < cores && i < MAX_WORKERS; i++) {
            workers[i].index = i;
            pthread_create(&workers[i].thread, NULL, worker_thread_main, &workers[i]);
        }
        pthread_create(&audio, NULL, audio_thread_main, NULL);
    }

    {
        unsigned long seen_msw = 0, ticks = 0;
        struct timespec nap = {0, 200 * 1000 * 1000};
        while (!exit_requested) {
            nanosleep(&nap, NULL);
            ticks++;
            if (frontend == 'r' && audio_tid) {
                unsigned long msw = tick_rt_threads(2);
                if (msw > seen_msw) {
                    log_line(L_DEBUG, "raspa audio", "Mode switch detected on %s (%lu)",
                             AUDIO_THREAD_NAME, msw);
                    mode_switch_pending = 1;
                }
                seen_msw = msw;
            }
            if (timing && ticks % 25 == 0) {
                for (int i = 0; i < plugin_count; i++)
                    log_line(L_INFO, "engine", "Processor: %d (%s), avg: 8.1%%, min: 6.5%%, "
                             "max: 11.4%%", i + 100, plugins[i].name);
                log_line(L_INFO, "engine", "Engine total: avg: 12.3%%, min: 10.0%%, max: 17.9%%");
            }
        }
    }

    if (frontend == 'r') {
        pthread_join(audio, NULL);
        tids[tid_count++] = audio_tid;
        for (int i = 1; i < cores && i < MAX_WORKERS; i++) {
            pthread_join(workers[i].thread, NULL);
            tids[tid_count++] = workers[i].tid;
        }
        unregister_rt_threads(tids, tid_count);
        log_line(L_INFO, "raspa audio", "Closing Raspa driver.");
    }
    json_free(root);
    log_line(L_INFO, "main", legacy ? "Sushi exited normally." : "Sushi exiting normally!");
    return 0;
}
