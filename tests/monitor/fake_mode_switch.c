/*
 * A stand-in for Sushi with a plugin that is not real-time safe.
 *
 * With --debug-mode-sw, a real-time kernel sends SIGXCPU to an audio thread the
 * moment it switches to Linux. Without such a kernel, this program's audio
 * thread sends the signal to itself right after the offending call (malloc in
 * the audio callback), so gdb stops where a real board would.
 * Without --debug-mode-sw it runs a few blocks and exits normally.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int debug_mode_sw;

static void process_block(float *buffer, int frames)
{
    /* Not real-time safe: allocating in the audio callback. */
    float *scratch = malloc(sizeof(float) * (size_t)frames);
    memcpy(scratch, buffer, sizeof(float) * (size_t)frames);
    free(scratch);
    if (debug_mode_sw)
        pthread_kill(pthread_self(), SIGXCPU);
}

static void *audio_thread(void *arg)
{
    float buffer[64] = {0};
    (void)arg;
    for (int block = 0; block < 8; block++) {
        process_block(buffer, 64);
        usleep(1000);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t thread;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--debug-mode-sw") == 0)
            debug_mode_sw = 1;
    pthread_create(&thread, NULL, audio_thread, NULL);
    pthread_setname_np(thread, "sushi_rt_audio");
    pthread_join(thread, NULL);
    return 0;
}
