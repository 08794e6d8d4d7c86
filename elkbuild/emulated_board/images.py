"""The emulated board's two cached layers, each rebuilt only when its recipe changes.

- rootfs: a Debian arm64 userland made by mmdebstrap (openssh-server and what it
  needs), then turned into Elk's shape by assets/customize.sh. Slow (minutes under
  qemu), so it is keyed by a hash of everything that goes into it.
- assets: the stand-ins cross-compiled for aarch64 (sushi, rtstat/evl, the SIGXCPU
  demo, the VST3 host) plus plain files (sshd settings, wrappers). Seconds to
  rebuild. They are compiled in the default toolchain's container, with the
  compiler and glibc floor plugins get, so they run on every board a plugin does;
  the key follows that toolchain, so a new compiler rebuilds them.

Both live under $ELKBUILD_CACHE/board/ as <kind>-<key>/ directories; a build goes
to a .partial directory first and is renamed into place, under a lock, so a crash
or a parallel run never leaves a half-made layer behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from elkbuild.build.toolchains import BOARD_TOOLCHAIN, board_program_executor, get_toolchain
from elkbuild.deps.debian import mmdebstrap_argv
from elkbuild.executor import Executor
from elkbuild.locks import locked
from elkbuild.vst3host.build import SOURCES as VST3HOST_SOURCES, build_host

log = logging.getLogger("elkbuild.board")

ASSETS = Path(__file__).resolve().parent / "assets"
SOURCES = ASSETS / "src"
FILES = ASSETS / "files"
CUSTOMIZE = ASSETS / "customize.sh"

# The board's package set: only what a real Elk image also offers that the
# emulation needs: sshd with sftp for transfers, and the C++ runtime and ALSA
# library every plugin host on Elk has (Sushi links both). Everything else is a
# stand-in.
ROOTFS_RECIPE = {
    "suite": "bookworm",
    "architecture": "arm64",
    "variant": "essential",
    "packages": ["openssh-server", "libstdc++6", "libasound2"],
    "dpkg_excludes": ["/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*",
                      "/usr/share/info/*"],
}

# Programs cross-compiled for the board: target path -> (sources in assets/src,
# extra compiler flags).
PROGRAMS = {
    "usr/lib/elk-board/rtstat": (["rtstat.c", "rt_table.c"], []),
    "usr/bin/sushi_b64": (["sushi.c", "json.c", "rt_table.c"], []),
    "usr/bin/modeswitch-demo": (["modeswitch_demo.c"], []),
    "usr/lib/elk-board/libelk-procshim.so": (["procshim.c", "rt_table.c"],
                                             ["-fPIC", "-shared", "-fvisibility=hidden", "-ldl"]),
}
VST3HOST = Path("usr/lib/elk-board/vst3host")
# -g: the SIGXCPU backtrace through qemu's gdb stub names functions and lines.
CFLAGS = ["-O1", "-g", "-Wall", "-Wextra", "-Wno-unused-parameter",
          "-Wno-format-truncation", "-pthread"]
QEMU_STATIC = Path("/usr/bin/qemu-aarch64-static")

Progress = Callable[[str], None]


def _hash_files(digest: "hashlib._Hash", paths: list[Path], base: Path) -> None:
    for path in sorted(paths):
        digest.update(str(path.relative_to(base)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
        digest.update(oct(path.stat().st_mode & 0o777).encode())


def rootfs_key() -> str:
    digest = hashlib.sha256(json.dumps(ROOTFS_RECIPE, sort_keys=True).encode())
    _hash_files(digest, [CUSTOMIZE], ASSETS)
    return digest.hexdigest()[:16]


def assets_key() -> str:
    digest = hashlib.sha256(json.dumps({"programs": PROGRAMS, "cflags": CFLAGS,
                                        "toolchain": get_toolchain(BOARD_TOOLCHAIN).identity()},
                                       sort_keys=True).encode())
    tree = [p for p in (*SOURCES.rglob("*"), *FILES.rglob("*"))
            if p.is_file() and not p.is_symlink()]
    for link in sorted(p for p in FILES.rglob("*") if p.is_symlink()):
        digest.update(f"{link.relative_to(FILES)} -> {os.readlink(link)}".encode())
    _hash_files(digest, tree, ASSETS)
    _hash_files(digest, [ASSETS / "board-init.sh"], ASSETS)
    # The VST3 host the board's Sushi runs plugins with (offline mode).
    _hash_files(digest, sorted(p for p in VST3HOST_SOURCES.iterdir() if p.is_file()),
                VST3HOST_SOURCES.parent)
    if QEMU_STATIC.exists():
        info = QEMU_STATIC.stat()
        digest.update(f"{info.st_size}:{int(info.st_mtime)}".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Layers:
    rootfs: Path
    assets: Path


def board_cache(cache_dir: Path) -> Path:
    return cache_dir / "board"


def cached_layers(cache_dir: Path) -> Layers:
    cache = board_cache(cache_dir)
    return Layers(cache / f"rootfs-{rootfs_key()}", cache / f"assets-{assets_key()}")


def ensure_layers(executor: Executor, cache_dir: Path, progress: Progress | None = None,
                  compiler: Callable[[], Executor] | None = None) -> Layers:
    """Both layers, built if missing (the rootfs takes minutes, once). `executor`
    runs this machine's commands; `compiler` (default: BOARD_TOOLCHAIN's container,
    started only when the assets are built) compiles the stand-ins."""
    layers = cached_layers(cache_dir)
    say = progress or (lambda line: log.info("%s", line))
    with locked(board_cache(cache_dir) / ".lock"):
        if not layers.rootfs.is_dir():
            build_rootfs(executor, layers.rootfs, say)
        if not layers.assets.is_dir():
            make = compiler or board_program_executor(cache_dir, executor)
            build_assets(make(), layers.assets, say)
    return layers


def _fresh(path: Path) -> Path:
    partial = path.with_name(path.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    return partial


def build_rootfs(executor: Executor, target: Path, say: Progress) -> None:
    partial = _fresh(target)
    recipe = ROOTFS_RECIPE
    say(f"building the board's Debian {recipe['suite']} {recipe['architecture']} userland "
        f"with mmdebstrap (a few minutes, once)")
    executor.run(mmdebstrap_argv(recipe, partial), on_line=lambda line: say(f"  {line}"),
                 hint="mmdebstrap needs Debian's archive (deb.debian.org) and qemu-aarch64 "
                      "in binfmt_misc")
    shutil.copy2(CUSTOMIZE, partial / "tmp" / "elk-customize.sh")
    say("making it an Elk board: user mind, /udata, plugin and config folders")
    executor.run(["chroot", str(partial), "/bin/sh", "/tmp/elk-customize.sh"],
                 on_line=lambda line: say(f"  {line}"))
    (partial / "tmp" / "elk-customize.sh").unlink()
    (partial / "etc" / "elk-board-recipe.json").write_text(
        json.dumps({"rootfs": recipe, "key": target.name}, indent=2) + "\n")
    partial.rename(target)


def build_assets(compiler: Executor, target: Path, say: Progress) -> None:
    """The assets layer; `compiler` runs BOARD_TOOLCHAIN's compilers (its container)."""
    partial = _fresh(target)
    cc = get_toolchain(BOARD_TOOLCHAIN).c_compiler()
    say(f"cross-compiling the board's stand-ins (sushi, evl/rtstat, SIGXCPU demo) with {cc}")
    for relative, (sources, flags) in PROGRAMS.items():
        output = partial / relative
        output.parent.mkdir(parents=True, exist_ok=True)
        compiler.run([cc, *CFLAGS, "-o", str(output),
                      *(str(SOURCES / name) for name in sources), *flags],
                     hint=f"{cc} is in the {BOARD_TOOLCHAIN} image "
                          f"(invoke docker-image --toolchain {BOARD_TOOLCHAIN})")
    say("cross-compiling the VST3 host its Sushi processes files with")
    host = build_host(compiler, target.parent / "vst3host", "aarch64")
    (partial / VST3HOST).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(host.host, partial / VST3HOST)
    shutil.copy2(host.interposer, partial / VST3HOST.with_name("librt_interpose.so"))
    for source in sorted(FILES.rglob("*")):
        destination = partial / source.relative_to(FILES)
        if source.is_symlink():
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.symlink_to(os.readlink(source))
            continue
        if source.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
    # qemu's own gdb stub is how a debugger reaches board programs (qemu-user
    # has no ptrace); a static x86-64 binary runs as is inside the arm64 root.
    if QEMU_STATIC.exists():
        shutil.copy2(QEMU_STATIC, partial / "usr/lib/elk-board/qemu-aarch64-static")
    for path in partial.rglob("*"):
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o755)
        elif path.is_file() and not path.is_symlink():
            executable = path.stat().st_mode & stat.S_IXUSR
            path.chmod(0o755 if executable else 0o644)
    os.sync()
    partial.rename(target)


def prune(cache_dir: Path, keep: Layers) -> list[Path]:
    """Remove layers no recipe produces any more (old keys)."""
    removed = []
    cache = board_cache(cache_dir)
    if not cache.is_dir():
        return removed
    with locked(cache / ".lock"):
        for entry in cache.iterdir():
            stale_kind = entry.name.startswith(("rootfs-", "assets-"))
            if entry.is_dir() and stale_kind and entry not in (keep.rootfs, keep.assets):
                shutil.rmtree(entry)
                removed.append(entry)
    return removed
