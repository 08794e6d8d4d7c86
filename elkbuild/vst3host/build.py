"""Building elkbuild's own VST3 host and its call counter, for x86_64 or aarch64.

vst3host.cpp hosts a plugin for rt-check, info and file processing; rt_interpose.cpp
(loaded with LD_PRELOAD) counts allocations, locks and waits on the audio thread.
Both are compiled once per hash of their sources and the compiler. The aarch64
build is what the emulated board's image carries: it is compiled with the default
toolchain's cross compiler, so `executor` must be that toolchain's (its
container), and it runs under qemu-user with that compiler's target libc.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

from elkbuild.build.toolchains import BOARD_TOOLCHAIN, get_toolchain
from elkbuild.bundle.layout import arch_dir
from elkbuild.errors import BuildError, CommandFailed, UsageError
from elkbuild.executor import Executor, require

SOURCES = Path(__file__).resolve().parent
VST3_SDK = Path("/usr/share/juce/modules/juce_audio_processors/format_types/VST3_SDK")
"""The VST3 SDK JUCE ships (Debian package juce-modules-source): only its
pluginterfaces headers and funknown.cpp are used."""

HOST_SOURCES = ("vst3host.cpp", "wav_io.h", "rt_interpose.h")
INTERPOSER_SOURCES = ("rt_interpose.cpp", "rt_interpose.h")
CXXFLAGS = ("-std=c++17", "-O2", "-Wall", "-Wextra")
@dataclass(frozen=True)
class Target:
    """A CPU the host can be built for, and how this machine runs its binaries."""

    arch: str
    compiler: str
    install: str          # how to get the compiler, for the error hint
    sysroot: Path | None  # the target's libc for qemu-user; None when native

    @property
    def bundle_folder(self) -> str:
        return arch_dir(self.arch)


TARGETS: dict[str, Target] = {
    "x86_64": Target("x86_64", "g++", "apt-get install g++", None),
    # The cross compiler ships libc, libstdc++ and libdl for the target, all the host
    # links, so no board sysroot is needed.
    "aarch64": Target("aarch64", get_toolchain(BOARD_TOOLCHAIN).compiler(),
                      f"it is in the {BOARD_TOOLCHAIN} image: build through that toolchain's "
                      "executor (invoke docker-image builds the image)",
                      Path("/usr/aarch64-linux-gnu")),
}


def native_arch() -> str:
    machine = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine)


def target_for(arch: str) -> Target:
    try:
        return TARGETS[arch]
    except KeyError:
        raise UsageError(f"arch is {arch!r}; allowed: {', '.join(sorted(TARGETS))}") from None


@dataclass(frozen=True)
class HostBuild:
    arch: str
    host: Path        # the vst3host executable
    interposer: Path  # librt_interpose.so, for LD_PRELOAD
    key: str          # hash of sources + compiler the build is filed under

    def runner(self) -> list[str]:
        """The argv prefix that runs the host on this machine: nothing when native,
        qemu-user with the target's libc otherwise."""
        target = target_for(self.arch)
        if self.arch == native_arch():
            return []
        require("qemu-aarch64-static", "apt-get install qemu-user-static")
        return ["qemu-aarch64-static", "-L", str(target.sysroot)]

    def command(self, *args: str, preload: bool = False) -> list[str]:
        runner = self.runner()
        if preload and runner:
            # qemu sets it in the guest only; qemu itself never loads an aarch64 library.
            runner = [*runner, "-E", f"LD_PRELOAD={self.interposer}"]
        return [*runner, str(self.host), *args]


# Lists the SDK's pluginterfaces with their hashes where the compiler runs (the
# host or a toolchain's container); fails when funknown.cpp is not there.
_HASH_SDK = ('cd "$1" && test -f pluginterfaces/base/funknown.cpp && '
             'find pluginterfaces -type f | LC_ALL=C sort | xargs sha256sum')


def _build_key(executor: Executor, target: Target) -> str:
    found = executor.run(["sh", "-c", 'command -v "$1"', "find-compiler", target.compiler], check=False)
    if not found.ok:
        raise BuildError(f"{target.compiler}: not found by the executor {executor.name}",
                         target.install)
    headers = executor.run(["sh", "-c", _HASH_SDK, "hash-sdk", str(VST3_SDK)], check=False)
    if not headers.ok:
        raise BuildError(f"{VST3_SDK}: the VST3 SDK's pluginterfaces are missing",
                         "apt-get install juce-modules-source")
    digest = hashlib.sha256()
    for name in sorted({*HOST_SOURCES, *INTERPOSER_SOURCES}):
        digest.update(name.encode() + b"\0" + (SOURCES / name).read_bytes())
    digest.update(headers.stdout.encode())
    version = executor.run([target.compiler, "--version"]).stdout
    digest.update(f"{target.arch}\0{target.compiler}\0{version}\0{' '.join(CXXFLAGS)}".encode())
    return digest.hexdigest()


def build_host(executor: Executor, build_dir: Path, arch: str = "x86_64", *,
               niceness: int | None = 10) -> HostBuild:
    """Compile vst3host and librt_interpose.so for `arch` under build_dir, keyed on a
    hash of the sources and the compiler: an unchanged host is not rebuilt."""
    target = target_for(arch)
    key = _build_key(executor, target)
    out = Path(build_dir) / f"vst3host-{arch}-{key[:16]}"
    build = HostBuild(arch, out / "vst3host", out / "librt_interpose.so", key)
    if (out / ".complete").is_file():
        return build

    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    nice = ["nice", "-n", str(niceness)] if niceness is not None else []
    hint = f"the compiler is {target.compiler} ({target.install})"
    try:
        executor.run([*nice, target.compiler, *CXXFLAGS, f"-I{VST3_SDK}",
                      str(SOURCES / "vst3host.cpp"), str(VST3_SDK / "pluginterfaces/base/funknown.cpp"),
                      "-o", str(partial / "vst3host"), "-ldl", "-pthread"], hint=hint)
        # -fno-builtin: the compiler must not turn the interposer's own code into
        # calls to the functions it defines (malloc+memset into calloc).
        executor.run([*nice, target.compiler, *CXXFLAGS, "-fPIC", "-shared", "-fno-builtin",
                      str(SOURCES / "rt_interpose.cpp"), "-o", str(partial / "librt_interpose.so"),
                      "-ldl"], hint=hint)
    except CommandFailed as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise BuildError(f"{SOURCES}: building vst3host for {arch} failed: {exc.one_line()}",
                         "fix the compiler error shown with --verbose") from exc
    (partial / ".complete").write_text(key + "\n")
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return build
