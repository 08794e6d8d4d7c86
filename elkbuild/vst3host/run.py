"""Running elkbuild's VST3 host: a plugin's own description, and WAV files through plugins.

The host prints one JSON line as its answer (plugins may print too); a failure
is its last `vst3host: error:` line. process_file is how plugin output is
compared with the model's reference output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from elkbuild.bundle.layout import BundleLayout
from elkbuild.errors import BuildError, UsageError
from elkbuild.executor import Executor
from elkbuild.vst3host.build import HostBuild, build_host, native_arch, target_for


def plugin_binary(bundle: Path, arch: str) -> Path:
    """The plugin binary for `arch`, or an error saying what the bundle holds."""
    layout = BundleLayout(Path(bundle))
    if not layout.path.is_dir():
        raise UsageError(f"{bundle}: no such VST3 bundle", "give the path of a <Name>.vst3 folder")
    binary = layout.binary_in(target_for(arch).bundle_folder)
    if not binary.is_file():
        raise BuildError(f"{bundle}: no binary for {arch} at {layout.relative(binary)} "
                         f"(found: {', '.join(layout.code_folders()) or 'no <arch>-linux folder'})",
                         f"build the plugin for {arch}")
    return binary


def run_host(executor: Executor, build: HostBuild, args: list[str], what: str, *,
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
        # The plugin's own last word (e.g. why its model did not load) says why.
        said = [line.strip() for line in done.stderr.splitlines()
                if line.strip() and not line.startswith("vst3host")]
        if said:
            message += f"; the plugin said: {said[-1]}"
        raise BuildError(f"{what}: {message}", "run the same vst3host command with --verbose to see it")
    result = result_line(done.stdout)
    if result is None:
        raise BuildError(f"{what}: vst3host printed no JSON result", "run it by hand to see its output")
    return result


def result_line(stdout: str) -> dict[str, Any] | None:
    """The host's answer in its output: the last JSON object line (plugins, and the
    Sushi in front of it on the emulated board, may print too)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                found = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(found, dict):
                return found
    return None


def chain_latency(result: dict[str, Any] | None) -> int | None:
    """The latency a `process` run's plugins reported, summed over the chain, or None
    when the result does not say."""
    try:
        return sum(int(plugin["latency_samples"]) for plugin in (result or {})["plugins"])
    except (KeyError, TypeError, ValueError):
        return None


def plugin_info(bundle: Path, executor: Executor, build_dir: Path, *,
                arch: str | None = None) -> dict[str, Any]:
    """Name, vendor, class id, buses and latency as the plugin reports them."""
    arch = arch or native_arch()
    plugin_binary(bundle, arch)
    build = build_host(executor, build_dir, arch)
    return run_host(executor, build, ["info", str(bundle)], str(bundle))


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
    return run_host(executor, build, args, str(wav_in))
