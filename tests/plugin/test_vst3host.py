"""elkbuild's own VST3 host and the rt-check gate, against real parts: the host and
its call counter built with the real compilers, the NeuralSaturator plugin built
natively with JUCE, a deliberately bad plugin compiled here, qemu-user for aarch64."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import onnx_reference, read_wav, write_wav
from conftest import require_real_part
from delayed import delayed_error

from elkbuild.elf import read_elf, version_key
from elkbuild.errors import BuildError, UsageError
from elkbuild.build.toolchains import BOARD_TOOLCHAIN, Workspace, get_toolchain
from elkbuild.executor import Executor, LocalExecutor
from elkbuild.plugin.native_build import NativeBuild
from elkbuild.vst3host.build import VST3_SDK, HostBuild, build_host
from elkbuild.vst3host.rt_check import format_report, rt_check
from elkbuild.vst3host.run import plugin_info, process_file

REPO = Path(__file__).resolve().parents[2]
BAD_SOURCE = Path(__file__).resolve().parent / "bad_plugin" / "bad_plugin.cpp"
SAMPLE_RATE = 48000

pytestmark = pytest.mark.slow


def _require_compiler(compiler: str, package: str) -> None:
    require_real_part(shutil.which(compiler) is not None, f"the compiler {compiler}",
                      f"apt-get install {package}")
    require_real_part((VST3_SDK / "pluginterfaces").is_dir(), "the VST3 SDK pluginterfaces JUCE ships",
                      "apt-get install juce-modules-source")


@pytest.fixture(scope="module")
def build_dir(host_dir: Path) -> Path:
    return host_dir


@pytest.fixture(scope="module")
def host(build_dir: Path) -> HostBuild:
    _require_compiler("g++", "g++")
    return build_host(LocalExecutor(), build_dir)


def _compile_bad(into: Path, compiler: str, arch: str, *defines: str,
                 executor: Executor | None = None) -> Path:
    """Bad.vst3/Contents/<arch>-linux/Bad.so, compiled from tests/plugins/bad_plugin."""
    bundle = into / "Bad.vst3"
    binary = bundle / "Contents" / f"{arch}-linux" / "Bad.so"
    binary.parent.mkdir(parents=True, exist_ok=True)
    done = (executor or LocalExecutor()).run(
        ["nice", "-n", "10", compiler, "-std=c++17", "-O2", "-fPIC", "-shared",
         "-fvisibility=hidden", *defines, f"-I{VST3_SDK}", str(BAD_SOURCE),
         str(VST3_SDK / "pluginterfaces/base/funknown.cpp"), "-o", str(binary)], check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return bundle


@pytest.fixture(scope="module")
def bad_bundle(tmp_path_factory) -> Path:
    _require_compiler("g++", "g++")
    return _compile_bad(tmp_path_factory.mktemp("bad"), "g++", "x86_64")


def _test_audio(channels: int, seed: int, frames: int = 4800) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.05, 1.5, frames)
    return (rng.uniform(-1.0, 1.0, size=(channels, frames)) * ramp).astype(np.float32)


# ---- info and process --------------------------------------------------------

def test_info_names_neural_saturator(saturator_build: NativeBuild, host: HostBuild, build_dir: Path):
    info = plugin_info(saturator_build.bundle, LocalExecutor(), build_dir)
    assert info["name"] == "NeuralSaturator"
    assert info["vendor"] == "Elkbuild Examples"
    assert len(info["class_id"]) == 32
    assert info["main_input_channels"] == info["main_output_channels"] == 2
    # Prepared for blocks of up to 512: ONNX Runtime runs on the worker pool, so the
    # latency is 63 (frames of 64 over blocks of any size) + whole blocks of inference.
    latency = info["latency_samples"]
    assert latency >= 63 + 512 and (latency - 63) % 512 == 0


@pytest.mark.parametrize("block", [64, 100])
def test_process_matches_onnxruntime(saturator_build: NativeBuild, host: HostBuild, build_dir: Path,
                                     tmp_path: Path, block: int):
    audio = _test_audio(2, block)
    write_wav(tmp_path / "in.wav", audio, SAMPLE_RATE)
    result = process_file([saturator_build.bundle], tmp_path / "in.wav", tmp_path / "out.wav",
                          LocalExecutor(), build_dir, block=block)
    out, rate = read_wav(tmp_path / "out.wav")
    expected = onnx_reference(saturator_build.project.model, audio, frame=64)
    assert rate == SAMPLE_RATE and out.shape == audio.shape
    # A file render is offline: the plugin waits for its worker, so the output is the
    # model's exactly, delayed by the latency it reports.
    latency = result["plugins"][0]["latency_samples"]
    assert latency >= 63 + block
    error = delayed_error(out, expected, latency)
    print(f"block {block}: latency {latency}, max error vs onnxruntime {error:.3g}")
    assert error < 1e-5
    assert np.max(np.abs(out - audio)) > 0.1  # the plugin did something
    assert result["frames"] == audio.shape[1] and result["plugins"][0]["name"] == "NeuralSaturator"
    assert not (tmp_path / "out.wav.partial").exists()


def test_process_mono_int16_file(saturator_build: NativeBuild, host: HostBuild, build_dir: Path,
                                 tmp_path: Path):
    """A 16-bit mono file: the stereo-by-default plugin is asked for a mono layout."""
    audio = _test_audio(1, 7)
    write_wav(tmp_path / "in.wav", audio, 44100, int16=True)
    result = process_file([saturator_build.bundle], tmp_path / "in.wav", tmp_path / "out.wav",
                          LocalExecutor(), build_dir)
    out, rate = read_wav(tmp_path / "out.wav")
    quantised = np.round(np.clip(audio, -1, 1) * 32767.0) / 32768.0
    expected = onnx_reference(saturator_build.project.model, quantised.astype(np.float32), frame=64)
    assert result["channels"] == 1 and rate == 44100
    assert delayed_error(out, expected, result["plugins"][0]["latency_samples"]) < 1e-5


def test_process_chain_runs_plugins_in_order(saturator_build: NativeBuild, bad_bundle: Path,
                                             host: HostBuild, build_dir: Path, tmp_path: Path):
    audio = _test_audio(2, 3)
    write_wav(tmp_path / "in.wav", audio, SAMPLE_RATE)
    result = process_file([bad_bundle, saturator_build.bundle, bad_bundle], tmp_path / "in.wav",
                          tmp_path / "out.wav", LocalExecutor(), build_dir)
    out, _ = read_wav(tmp_path / "out.wav")
    assert [p["name"] for p in result["plugins"]] == ["Bad", "NeuralSaturator", "Bad"]
    # Bad passes audio through: the chain sounds like the saturator alone.
    latency = result["plugins"][1]["latency_samples"]
    assert delayed_error(out, onnx_reference(saturator_build.project.model, audio, 64), latency) < 1e-5


def test_process_rejects_a_layout_the_plugin_refuses(bad_bundle: Path, host: HostBuild,
                                                     build_dir: Path, tmp_path: Path):
    write_wav(tmp_path / "mono.wav", _test_audio(1, 1, 256), SAMPLE_RATE)
    with pytest.raises(BuildError, match=r"Bad takes 2 in / 2 out channels and refused 1"):
        process_file([bad_bundle], tmp_path / "mono.wav", tmp_path / "out.wav", LocalExecutor(),
                     build_dir)
    assert not (tmp_path / "out.wav").exists()


# ---- rt-check ----------------------------------------------------------------

@pytest.mark.parametrize("block", [64, 100])
def test_rt_check_effect_plugin_is_clean_with_onnx_runtime_decoupled(
        saturator_build: NativeBuild, host: HostBuild, build_dir: Path, block: int):
    """With elkbuild's patched JUCE the plugin's own code (template + JUCE wrapper)
    makes no unsafe call, and ONNX Runtime (which allocates and locks inside every
    Session::Run) runs on elkrt's worker pool: the audio thread only moves samples
    through lock-free queues, so even the strict verdict passes."""
    report = rt_check(saturator_build.bundle, LocalExecutor(), build_dir, block=block, blocks=2000)
    print(format_report(report))
    assert report.process_failures == 0
    assert report.deadline_us == pytest.approx(1e6 * block / SAMPLE_RATE)
    # JUCE 7.0.5 as Debian ships it locks and copies a vector here in every block.
    assert report.plugin_unsafe == 0, format_report(report)
    assert report.non_blocking == {"pthread_mutex_trylock": 2000}
    assert report.calls_by_object("pthread_mutex_trylock") == {"NeuralSaturator.so": 2000}
    assert report.unsafe == 0 and report.engine_calls == 0, format_report(report)
    assert report.passes() and "PASS" in format_report(report)


def test_rt_check_counts_the_bad_plugin(bad_bundle: Path, host: HostBuild, build_dir: Path):
    # Judged as an effect: its output must not be its input.
    report = rt_check(bad_bundle, LocalExecutor(), build_dir, blocks=2000, judge_output=True)
    print(format_report(report))
    assert not report.ok
    # Exactly what its process() does, once per block, and nothing else.
    assert report.offenders == {"malloc": 2000, "free": 2000, "pthread_mutex_lock": 2000}
    assert report.total == report.unsafe == report.plugin_unsafe == 6000
    assert not report.passes(allow_engine=True)
    assert report.calls_by_object("malloc") == {"Bad.so": 2000}
    assert 0 < report.p50_us <= report.p99_us <= report.max_us
    text = format_report(report)
    assert "FAIL" in text and "pthread_mutex_lock" in text and "Bad.so" in text
    # It also passes its input through unchanged: rt-check says so (a model that did
    # not run looks the same).
    assert report.passes_through and report.latency_samples == 0
    assert "the output is the input passed through" in text


def test_rt_check_errors_name_the_bundle_and_the_fix(bad_bundle: Path, host: HostBuild,
                                                     build_dir: Path, tmp_path: Path):
    with pytest.raises(UsageError, match="no such VST3 bundle"):
        rt_check(tmp_path / "Missing.vst3", LocalExecutor(), build_dir)
    arm_only = tmp_path / "ArmOnly.vst3" / "Contents" / "aarch64-linux"
    arm_only.mkdir(parents=True)
    (arm_only / "ArmOnly.so").write_bytes(b"")
    with pytest.raises(BuildError, match=r"no binary for x86_64 .*found: aarch64-linux"):
        rt_check(arm_only.parents[1], LocalExecutor(), build_dir)
    no_factory = _compile_bad(tmp_path / "nofactory", "g++", "x86_64", "-DBAD_PLUGIN_NO_FACTORY")
    with pytest.raises(BuildError, match="plugin factory missing") as caught:
        rt_check(no_factory, LocalExecutor(), build_dir, blocks=10)
    assert "\n" not in caught.value.one_line()


def test_unchanged_host_is_not_rebuilt(host: HostBuild, build_dir: Path):
    before = host.host.stat().st_mtime_ns
    again = build_host(LocalExecutor(), build_dir)
    assert again == host and again.host.stat().st_mtime_ns == before


# ---- aarch64 -----------------------------------------------------------------

def test_aarch64_host_is_an_aarch64_elf_and_runs_under_qemu(build_dir: Path, tmp_path: Path,
                                                           debian_arm64_image):
    """Built, like the emulated board's copy, in the default toolchain's container, and
    run there under qemu against that compiler's target libc (glibc 2.31)."""
    from elftools.elf.elffile import ELFFile

    toolchain = get_toolchain(BOARD_TOOLCHAIN)
    executor = toolchain.executor(Workspace(root=tmp_path, cache_dir=build_dir.parents[1]))
    build = build_host(executor, build_dir, "aarch64")
    for binary in (build.host, build.interposer):
        with binary.open("rb") as f:
            assert ELFFile(f).header.e_machine == "EM_AARCH64"
        assert version_key(read_elf(binary).highest_needed("GLIBC")) <= version_key(toolchain.abi.glibc)
    done = executor.run(build.command("--help"), timeout=120)
    assert "vst3host rtcheck BUNDLE" in done.stdout

    # The call counter works on aarch64 too: the bad plugin, cross-compiled, is caught.
    bundle = _compile_bad(tmp_path, toolchain.compiler(), "aarch64", executor=executor)
    report = rt_check(bundle, executor, build_dir, blocks=500, arch="aarch64")
    assert report.arch == "aarch64"
    assert report.offenders == {"malloc": 500, "free": 500, "pthread_mutex_lock": 500}
