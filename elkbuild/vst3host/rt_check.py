"""rt-check: is a VST3 plugin's process() real-time safe?

Builds elkbuild's own small VST3 host (elkbuild/vst3host/vst3host.cpp) and the call
counter it is run with (rt_interpose.cpp, loaded with LD_PRELOAD) for x86_64 or
aarch64, then has the host run the plugin: N blocks of noise on a dedicated audio
thread, counting every allocation, mutex and condition-variable call made on that
thread inside process(). A plugin passes when the count is zero.

The same host processes WAV files through a chain of plugins (process_file), which
is how plugin output is compared with the model's reference output.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elkbuild.errors import BuildError, CommandFailed, ToolMissing, UsageError
from elkbuild.executor import Executor

SOURCES = Path(__file__).resolve().parent
VST3_SDK = Path("/usr/share/juce/modules/juce_audio_processors/format_types/VST3_SDK")
"""The VST3 SDK JUCE ships (Debian package juce-modules-source): only its
pluginterfaces headers and funknown.cpp are used."""

HOST_SOURCES = ("vst3host.cpp", "wav_io.h", "rt_interpose.h")
INTERPOSER_SOURCES = ("rt_interpose.cpp", "rt_interpose.h")
CXXFLAGS = ("-std=c++17", "-O2", "-Wall", "-Wextra")
NON_BLOCKING = frozenset({"pthread_mutex_trylock"})
"""Counted and shown, but not unsafe: a try-lock never waits and never enters the
kernel (it is how an audio thread takes a lock the message thread may hold)."""
ENGINE_LIBRARIES = ("libonnxruntime.so", "libtensorflow-lite.so")
"""Inference engines a plugin bundles: their calls can be told apart (--allow-engine)."""
DEFAULT_WARMUP = 16
"""Blocks run before counting starts, like the start-up grace of `invoke monitor`."""


@dataclass(frozen=True)
class Target:
    """A CPU the host can be built for, and how this machine runs its binaries."""

    arch: str
    compiler: str
    package: str          # Debian package of the compiler, for the error hint
    sysroot: Path | None  # the target's libc for qemu-user; None when native

    @property
    def bundle_folder(self) -> str:
        return f"{self.arch}-linux"


TARGETS: dict[str, Target] = {
    "x86_64": Target("x86_64", "g++", "g++", None),
    # The cross compiler ships libc, libstdc++ and libdl for the target, all the host
    # links, so no board sysroot is needed.
    "aarch64": Target("aarch64", "aarch64-linux-gnu-g++", "g++-aarch64-linux-gnu",
                      Path("/usr/aarch64-linux-gnu")),
}


def native_arch() -> str:
    machine = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine)


def _target(arch: str) -> Target:
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
        target = _target(self.arch)
        if self.arch == native_arch():
            return []
        if shutil.which("qemu-aarch64-static") is None:
            raise ToolMissing("qemu-aarch64-static", "apt-get install qemu-user-static")
        return ["qemu-aarch64-static", "-L", str(target.sysroot)]

    def command(self, *args: str, preload: bool = False) -> list[str]:
        runner = self.runner()
        if preload and runner:
            # qemu sets it in the guest only; qemu itself never loads an aarch64 library.
            runner = [*runner, "-E", f"LD_PRELOAD={self.interposer}"]
        return [*runner, str(self.host), *args]


def _build_key(executor: Executor, target: Target) -> str:
    if shutil.which(target.compiler) is None:
        raise ToolMissing(target.compiler, f"apt-get install {target.package}")
    if not (VST3_SDK / "pluginterfaces" / "base" / "funknown.cpp").is_file():
        raise BuildError(f"{VST3_SDK}: the VST3 SDK's pluginterfaces are missing",
                         "apt-get install juce-modules-source")
    digest = hashlib.sha256()
    for name in sorted({*HOST_SOURCES, *INTERPOSER_SOURCES}):
        digest.update(name.encode() + b"\0" + (SOURCES / name).read_bytes())
    for header in sorted((VST3_SDK / "pluginterfaces").rglob("*")):
        if header.is_file():
            digest.update(str(header.relative_to(VST3_SDK)).encode() + b"\0" + header.read_bytes())
    version = executor.run([target.compiler, "--version"]).stdout
    digest.update(f"{target.arch}\0{target.compiler}\0{version}\0{' '.join(CXXFLAGS)}".encode())
    return digest.hexdigest()


def build_host(executor: Executor, build_dir: Path, arch: str = "x86_64", *,
               niceness: int | None = 10) -> HostBuild:
    """Compile vst3host and librt_interpose.so for `arch` under build_dir, keyed on a
    hash of the sources and the compiler: an unchanged host is not rebuilt."""
    target = _target(arch)
    key = _build_key(executor, target)
    out = Path(build_dir) / f"vst3host-{arch}-{key[:16]}"
    build = HostBuild(arch, out / "vst3host", out / "librt_interpose.so", key)
    if (out / ".complete").is_file():
        return build

    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    nice = ["nice", "-n", str(niceness)] if niceness is not None else []
    hint = f"the compiler is {target.compiler} (apt-get install {target.package})"
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


# ---- running the host ---------------------------------------------------------

def plugin_binary(bundle: Path, arch: str) -> Path:
    """<Name>.vst3/Contents/<arch>-linux/<Name>.so, or an error saying what is there."""
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise UsageError(f"{bundle}: no such VST3 bundle", "give the path of a <Name>.vst3 folder")
    name = bundle.name[:-5] if bundle.name.endswith(".vst3") else bundle.name
    folder = _target(arch).bundle_folder
    binary = bundle / "Contents" / folder / f"{name}.so"
    if not binary.is_file():
        found = sorted(p.name for p in (bundle / "Contents").glob("*-linux") if p.is_dir())
        raise BuildError(f"{bundle}: no binary for {arch} at Contents/{folder}/{name}.so "
                         f"(found: {', '.join(found) or 'no <arch>-linux folder'})",
                         f"build the plugin for {arch}")
    return binary


def _run_host(executor: Executor, build: HostBuild, args: list[str], what: str, *,
              preload: bool = False, timeout: float = 900) -> dict[str, Any]:
    # Natively LD_PRELOAD goes in this one command's environment; under qemu it is a
    # qemu option (see HostBuild.command).
    env = {"LD_PRELOAD": str(build.interposer)} if preload and not build.runner() else None
    done = executor.run(build.command(*args, preload=preload), env=env, check=False,
                        timeout=timeout)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.startswith("vst3host: error:")]
        message = lines[-1].removeprefix("vst3host: error:").strip() if lines else (
            f"vst3host exited with {done.returncode}"
            + (f": {done.stderr.strip().splitlines()[-1]}" if done.stderr.strip() else ""))
        raise BuildError(f"{what}: {message}", "run the same vst3host command with --verbose to see it")
    # Plugins may print to stdout too: the host's answer is its last JSON line.
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise BuildError(f"{what}: vst3host printed no JSON result", "run it by hand to see its output")


def plugin_info(bundle: Path, executor: Executor, build_dir: Path, *,
                arch: str | None = None) -> dict[str, Any]:
    """Name, vendor, class id, buses and latency as the plugin reports them."""
    arch = arch or native_arch()
    plugin_binary(bundle, arch)
    build = build_host(executor, build_dir, arch)
    return _run_host(executor, build, ["info", str(bundle)], str(bundle))


def process_file(bundles: list[Path], wav_in: Path, wav_out: Path, executor: Executor,
                 build_dir: Path, *, block: int = 64, rate: float | None = None,
                 arch: str | None = None) -> dict[str, Any]:
    """Process a mono or stereo WAV file (float32 or int16) through the plugins in
    order, in blocks of `block` samples, into a float32 WAV file. Each plugin must
    accept the file's channel count. Returns the host's JSON result."""
    arch = arch or native_arch()
    if not bundles:
        raise UsageError("process_file needs at least one plugin bundle")
    if not Path(wav_in).is_file():
        raise UsageError(f"{wav_in}: no such WAV file", "give an existing mono or stereo .wav file")
    if block < 1:
        raise UsageError(f"block is {block}; give a positive number of samples")
    for bundle in bundles:
        plugin_binary(bundle, arch)
    build = build_host(executor, build_dir, arch)
    args = ["process", *[a for b in bundles for a in ("--plugin", str(b))],
            "--in", str(wav_in), "--out", str(wav_out), "--block", str(block)]
    if rate is not None:
        args += ["--rate", str(rate)]
    return _run_host(executor, build, args, str(wav_in))


@dataclass(frozen=True)
class Caller:
    at: str     # "object+0xoffset (symbol)"; symbol only when the object exports it
    calls: int

    @property
    def object(self) -> str:
        return self.at.split("+0x", 1)[0]


@dataclass(frozen=True)
class RtReport:
    bundle: Path
    plugin: str
    arch: str
    blocks: int
    block: int
    rate: float
    counts: dict[str, int]
    total: int
    p50_us: float
    p99_us: float
    max_us: float
    deadline_us: float
    overruns: int = 0            # blocks whose process() took longer than the deadline
    process_failures: int = 0    # process() calls that did not return kResultOk
    # The first distinct call sites of each counted function (the host keeps 64).
    callers: dict[str, list[Caller]] = field(default_factory=dict)
    warmup_blocks: int = 0
    startup_calls: int = 0       # calls made during the warm-up blocks (not judged)

    @property
    def unsafe(self) -> int:
        """Calls that can block or enter the kernel: what the verdict counts."""
        return sum(n for name, n in self.counts.items() if name not in NON_BLOCKING)

    @property
    def ok(self) -> bool:
        return self.unsafe == 0

    @property
    def offenders(self) -> dict[str, int]:
        return {name: n for name, n in self.counts.items() if n and name not in NON_BLOCKING}

    @property
    def engine_calls(self) -> int:
        """Unsafe calls recorded as made by an inference engine's own library."""
        return sum(caller.calls for name, sites in self.callers.items() if name not in NON_BLOCKING
                   for caller in sites if caller.object.startswith(ENGINE_LIBRARIES))

    @property
    def plugin_unsafe(self) -> int:
        """Unsafe calls not proven to come from the engine: the plugin's own code
        (template and JUCE), or call sites the host could not record."""
        return self.unsafe - self.engine_calls

    def passes(self, allow_engine: bool = False) -> bool:
        return (self.plugin_unsafe if allow_engine else self.unsafe) == 0

    @property
    def non_blocking(self) -> dict[str, int]:
        return {name: n for name, n in self.counts.items() if n and name in NON_BLOCKING}

    def calls_by_object(self, function: str) -> dict[str, int]:
        """Calls of one function per calling library, from the recorded call sites;
        calls from sites beyond the first 64 are left out."""
        objects: dict[str, int] = {}
        for caller in self.callers.get(function, []):
            objects[caller.object] = objects.get(caller.object, 0) + caller.calls
        return dict(sorted(objects.items(), key=lambda item: -item[1]))


def rt_check(bundle: Path, executor: Executor, build_dir: Path, *, blocks: int = 10000,
             block: int = 64, rate: float = 48000, arch: str | None = None,
             warmup: int = DEFAULT_WARMUP) -> RtReport:
    """Run `blocks` blocks of noise through the plugin on an audio thread and count
    the calls a real-time thread must not make inside process()."""
    arch = arch or native_arch()
    if blocks < 1 or block < 1:
        raise UsageError(f"blocks={blocks}, block={block}; both must be positive")
    plugin_binary(bundle, arch)
    build = build_host(executor, build_dir, arch)
    args = ["rtcheck", str(bundle), "--blocks", str(blocks), "--warmup", str(warmup),
            "--block", str(block), "--rate", str(rate)]
    found = _run_host(executor, build, args, f"rt-check of {bundle}", preload=True)
    return RtReport(
        bundle=Path(bundle), plugin=found["name"], arch=arch, blocks=found["blocks"],
        block=found["block"], rate=float(found["rate"]), counts=dict(found["counts"]),
        total=int(found["total"]), p50_us=float(found["p50_us"]), p99_us=float(found["p99_us"]),
        max_us=float(found["max_us"]), deadline_us=float(found["deadline_us"]),
        overruns=int(found["overruns"]), process_failures=int(found["process_failures"]),
        callers={name: [Caller(c["at"], int(c["calls"])) for c in sites]
                 for name, sites in found.get("callers", {}).items()},
        warmup_blocks=int(found.get("warmup_blocks", 0)),
        startup_calls=int(found.get("startup_calls", 0)))


def format_report(report: RtReport, allow_engine: bool = False) -> str:
    """A short table: the offending calls and which libraries made them, then timing."""
    lines = [f"rt-check {report.plugin} ({report.arch}): {report.blocks} blocks of "
             f"{report.block} samples at {report.rate:g} Hz"]
    if report.offenders:
        width = max(len(name) for name in report.offenders)
        lines.append(f"  {'call'.ljust(width)}  {'count':>9}  called from")
        for name, count in report.offenders.items():
            where = ", ".join(f"{obj} {n}" for obj, n in report.calls_by_object(name).items())
            lines.append(f"  {name.ljust(width)}  {count:>9}  {where or '?'}")
        lines.append(f"  {'unsafe'.ljust(width)}  {report.unsafe:>9}")
    else:
        lines.append("  no allocation, lock or condition-variable call on the audio thread")
    for name, count in report.non_blocking.items():
        lines.append(f"  {name}: {count} (never waits: allowed)")
    if report.warmup_blocks:
        lines.append(f"  warm-up: {report.startup_calls} calls in the first {report.warmup_blocks} "
                     "blocks (thread start-up, not judged)")
    lines.append(f"  process(): p50 {report.p50_us:.1f} us, p99 {report.p99_us:.1f} us, "
                 f"max {report.max_us:.1f} us; deadline {report.deadline_us:.1f} us "
                 f"({report.overruns} over)")
    if report.process_failures:
        lines.append(f"  process() failed {report.process_failures} times")
    if report.engine_calls:
        lines.append(f"  of which the engine library made {report.engine_calls}: it allocates or "
                     "locks inside its own run call (ONNX Runtime does in every Session::Run)")
    judged = report.plugin_unsafe if allow_engine else report.unsafe
    what = "unsafe calls outside the engine" if allow_engine else "unsafe calls"
    lines.append("  PASS" if judged == 0 else f"  FAIL: {judged} {what} in {report.blocks} blocks")
    return "\n".join(lines)
