/* Built with a glibc 2.34+ toolchain, both the program (__libc_start_main) and the
 * shared object (pthread_create) need symbol version GLIBC_2.34: what a plugin built
 * with a too new SDK looks like to Elk 0.11's loader (glibc 2.31).
 *   program:        cc -o needs_glibc_2_34 needs_glibc_2_34.c
 *   shared object:  cc -DPLUGIN -shared -fPIC -pthread -o plugin.so needs_glibc_2_34.c */
#include <pthread.h>
#include <stdio.h>

#ifdef PLUGIN
static void *work(void *argument) { return argument; }

__attribute__((visibility("default"))) int elk_probe_entry(void)
{
    pthread_t thread;
    if (pthread_create(&thread, NULL, work, NULL) != 0)
        return -1;
    return pthread_join(thread, NULL);
}
#else
int main(void)
{
    puts("built against glibc 2.34 or later, and loaded");
    return 0;
}
#endif
