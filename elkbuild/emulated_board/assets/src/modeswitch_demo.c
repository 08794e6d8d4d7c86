/*
 * modeswitch-demo: a real-time audio loop that breaks real-time safety on purpose.
 *
 * On Xenomai, a thread started with mode-switch warnings gets SIGXCPU when it
 * leaves the real-time domain (a malloc, a write, a lock). This program runs an
 * "audio callback" that, after a few blocks, allocates and writes to a file from
 * the audio thread and raises SIGXCPU itself, as the kernel would. Run it under
 * a debugger with `catch signal SIGXCPU` to see the backtrace that names the
 * offending call (README.md, "Debugging a mode switch").
 *
 * usage: modeswitch-demo [BLOCKS_BEFORE_THE_SWITCH]   (default 20)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int blocks_before_switch = 20;
static float buffer[2][64];

/* What a plugin must never do on the audio thread: allocate and do file I/O. */
static void __attribute__((noinline)) log_peak_from_audio_thread(float peak)
{
    char *line = malloc(64);
    snprintf(line, 64, "peak %.3f\n", (double)peak);
    fputs(line, stderr);
    free(line);
    /* Xenomai would now demote the thread to Linux and send SIGXCPU. */
    pthread_kill(pthread_self(), SIGXCPU);
}

static void __attribute__((noinline)) process_block(int block)
{
    float peak = 0.0f;
    for (int ch = 0; ch < 2; ch++)
        for (int i = 0; i < 64; i++) {
            buffer[ch][i] = (float)((block * 64 + i) % 97) / 97.0f;
            if (buffer[ch][i] > peak)
                peak = buffer[ch][i];
        }
    if (block == blocks_before_switch)
        log_peak_from_audio_thread(peak);
}

static void *audio_thread(void *arg)
{
    struct timespec period = {0, 1333333};
    pthread_setname_np(pthread_self(), "demo_rt_audio");
    for (int block = 0; block <= blocks_before_switch + 1000; block++) {
        process_block(block);
        nanosleep(&period, NULL);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t thread;
    if (argc > 1)
        blocks_before_switch = atoi(argv[1]);
    pthread_create(&thread, NULL, audio_thread, NULL);
    pthread_join(thread, NULL);
    fprintf(stderr, "modeswitch-demo: no SIGXCPU was delivered\n");
    return 1;
}
