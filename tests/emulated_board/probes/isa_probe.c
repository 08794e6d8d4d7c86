/* What the CPU under a program offers: `isa_probe sdot` runs an ARMv8.2 dot product,
 * `isa_probe ldadd` an ARMv8.1 LSE atomic (a Cortex-A72 has neither: SIGILL),
 * `isa_probe hwcap` prints the kernel's (here: qemu's) AT_HWCAP word in hex,
 * `isa_probe plain` only prints "plain ok". */
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "plain";
    if (!strcmp(mode, "sdot")) {
        __asm__ volatile(".arch armv8.2-a+dotprod\n sdot v0.4s, v1.16b, v2.16b" ::: "v0");
        puts("sdot ran");
    } else if (!strcmp(mode, "ldadd")) {
        long value = 1, add = 2, old;
        __asm__ volatile(".arch armv8.1-a\n ldadd %2, %0, [%1]"
                         : "=&r"(old) : "r"(&value), "r"(add) : "memory");
        printf("ldadd ran: %ld\n", value);
    } else if (!strcmp(mode, "hwcap")) {
        printf("%#lx\n", getauxval(AT_HWCAP));
    } else {
        puts("plain ok");
    }
    return 0;
}
