"""What the host must offer before an emulated board can run.

arm64 programs run here through qemu-user registered with binfmt_misc. The
registration needs the F ("fix binary") flag: the interpreter is opened when it is
registered, so it also works inside the board's chroot, where no x86 qemu exists.
"""

from __future__ import annotations

from pathlib import Path

from elkbuild.errors import BoardError, ToolMissing
from elkbuild.executor import Executor, installed

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
BINFMT_ENTRY = BINFMT_DIR / "qemu-aarch64"
APT_HINT = ("install the host packages: apt-get install qemu-user-static binfmt-support "
            "mmdebstrap openssh-client (scripts/bootstrap.sh does)")

# Host programs the board needs, and the package each comes from. Its aarch64
# programs are compiled in the default toolchain's container, not by a host compiler.
REQUIRED_TOOLS = {
    "mmdebstrap": "mmdebstrap",
    "qemu-aarch64-static": "qemu-user-static",
    "update-binfmts": "binfmt-support",
    "ssh-keygen": "openssh-client",
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "setsid": "util-linux",
}


def missing_tools() -> list[str]:
    return [tool for tool in REQUIRED_TOOLS if not installed(tool)]


def check_tools() -> None:
    missing = missing_tools()
    if missing:
        packages = sorted({REQUIRED_TOOLS[t] for t in missing})
        raise ToolMissing(missing[0], f"apt-get install {' '.join(packages)}")


def binfmt_ready() -> bool:
    """True when arm64 ELF files run directly, also inside a chroot."""
    try:
        text = BINFMT_ENTRY.read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("flags:")), "")
    return text.startswith("enabled") and "F" in flags


def ensure_binfmt(executor: Executor) -> None:
    """Mount binfmt_misc if needed and enable Debian's qemu-aarch64 entry."""
    if binfmt_ready():
        return
    if not (BINFMT_DIR / "register").exists():
        executor.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)],
                     hint="the board needs binfmt_misc; run as root")
    executor.run(["update-binfmts", "--enable", "qemu-aarch64"], hint=APT_HINT)
    if not binfmt_ready():
        raise BoardError(f"{BINFMT_ENTRY} is not enabled with the F flag after "
                         "update-binfmts --enable qemu-aarch64",
                         "reinstall qemu-user-static (its binfmt entry sets the F flag)")


def host_usable() -> tuple[bool, str]:
    """Whether this host can run a board at all, and if not, why."""
    import os

    if os.geteuid() != 0:
        return False, "the emulated board needs root (namespaces, mounts, chroot)"
    missing = missing_tools()
    if missing:
        return False, f"missing host programs {', '.join(missing)}; {APT_HINT}"
    return True, ""
