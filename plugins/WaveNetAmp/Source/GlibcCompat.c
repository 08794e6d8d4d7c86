/* Elk Audio OS 1.x has glibc 2.35. A plugin cross-built against a newer glibc,
 * with its C++ runtime linked in (static libstdc++, see the toolchain file), would
 * need arc4random@GLIBC_2.36 for std::random_device and fail to load on the board.
 * This definition, hidden inside the plugin, satisfies that reference instead,
 * with getrandom() (glibc 2.25). It is never called on the audio thread. */
#include <stdint.h>
#include <sys/random.h>

__attribute__((visibility("hidden"))) uint32_t arc4random(void)
{
    uint32_t value = 0;
    while (getrandom(&value, sizeof value, 0) != (long)sizeof value)
        ;
    return value;
}
