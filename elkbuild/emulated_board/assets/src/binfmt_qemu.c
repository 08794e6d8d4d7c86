/* The emulated board's binfmt_misc interpreter for arm64 programs: qemu-user with
 * the Raspberry Pi 4's CPU model, so an instruction a Cortex-A72 lacks raises SIGILL
 * as on the real board.  A static x86-64 program, built with the host's gcc.
 *
 * Registered in the board's own binfmt_misc instance with flags P and F, so the
 * kernel runs it as
 *     argv[0] = this file, argv[1] = the arm64 program's path,
 *     argv[2] = the program's own argv[0], argv[3...] = its arguments
 * and it execs the board's qemu (a path inside the board's root) with
 *     -cpu BOARD_CPU -0 <argv[0]> <path> <arguments>
 * (BOARD_CPU and BOARD_QEMU are given by elkbuild/emulated_board/images.py).
 *
 * That second exec would name the process after qemu in /proc/PID/comm, which
 * `pidof sushi_b64` and `pkill -x sushi_b64` read; so qemu is started through a
 * symlink that carries the program's name: LINKS/<uid>/<name> -> QEMU.  Each user
 * has its own folder, so no one runs a link another user made.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined BOARD_CPU || !defined BOARD_QEMU
#error "build with -DBOARD_CPU='\"<qemu cpu model>\"' -DBOARD_QEMU='\"<its path on the board>\"'"
#endif
#define QEMU BOARD_QEMU
#define LINKS "/run/elk-board/qemu"

/* LINKS/<uid>/<name>, made if missing; NULL when it cannot be trusted or made. */
static const char *named_link(const char *program, char *buffer, size_t size)
{
    const char *name = strrchr(program, '/');
    name = name ? name + 1 : program;
    uid_t uid = geteuid();
    char folder[64];
    snprintf(folder, sizeof folder, LINKS "/%u", (unsigned)uid);
    if (mkdir(folder, 0755) != 0 && errno != EEXIST)
        return NULL;
    struct stat info;
    if (lstat(folder, &info) != 0 || !S_ISDIR(info.st_mode) || info.st_uid != uid)
        return NULL;
    if (!*name || snprintf(buffer, size, "%s/%s", folder, name) >= (int)size)
        return NULL;
    if (symlink(QEMU, buffer) == 0)
        return buffer;
    char target[sizeof QEMU + 1];
    ssize_t length = readlink(buffer, target, sizeof target);
    if (length == (ssize_t)strlen(QEMU) && memcmp(target, QEMU, (size_t)length) == 0)
        return buffer;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fputs("binfmt-qemu-aarch64: started by binfmt_misc (flags PF) only\n", stderr);
        return 127;
    }
    char **args = calloc((size_t)argc + 6, sizeof *args);
    if (!args)
        return 127;
    int n = 0;
    args[n++] = argv[2];              /* what ps shows first: the program, not qemu */
    args[n++] = "-cpu";
    args[n++] = BOARD_CPU;
    args[n++] = "-0";
    args[n++] = argv[2];
    args[n++] = argv[1];
    for (int i = 3; i < argc; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    char link[PATH_MAX];
    const char *named = named_link(argv[1], link, sizeof link);
    if (named)
        execv(named, args);
    execv(QEMU, args);
    perror("binfmt-qemu-aarch64: exec " QEMU);
    return 127;
}
