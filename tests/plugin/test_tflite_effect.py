"""The TensorFlow Lite engine of the plugin template, end to end with real parts.

A TFLite saturator (elkbuild.example_models.saturator_tflite_bytes) is rendered as a
`kind: effect` plugin and built natively on this host with `elk build-native`, as a
user would: against Debian sid's libtensorflow-lite (no x86_64 LiteRT exports the
TfLite C API, and the bookworm host has none: elkbuild.build.tflite_runtime makes a
sid tree with mmdebstrap), and run by elkbuild's VST3 host *inside* that tree, where
the loader finds sid's glibc and abseil. Its output must match the Python TFLite
interpreter (ai-edge-litert), and rt-check (strict: engine calls count too; the
Python API and `elk rt-check`) must find no allocation or lock on the audio thread:
TFLite's Invoke() works in the arena AllocateTensors() made."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import read_wav, tflite_reference, write_wav
from cli_helpers import assert_one_line_error, run_task
from conftest import require_real_part
from delayed import delayed_error
from native_fixtures import require_native_build_tools

from elkbuild.config import load_config
from elkbuild.plugin.example_models import saturator_tflite_bytes, saturator_weights
from elkbuild.executor import LocalExecutor
from elkbuild.plugin.native_build import NativeBuild
from elkbuild.plugin.project import load_project
from elkbuild.plugin.render import NewPlugin, new_plugin
from elkbuild.vst3host.build import build_host
from elkbuild.vst3host.rt_check import format_report, rt_check
from elkbuild.vst3host.run import process_file
from elkbuild.build.tflite_runtime import TfliteRuntime, TreeExecutor, ensure_runtime

REPO = Path(__file__).resolve().parents[2]
FRAME = 64
SAMPLE_RATE = 48000

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "saturator.tflite"
    path.write_bytes(saturator_tflite_bytes(frame=FRAME))
    return path


def test_saturator_tflite_model_is_the_numpy_formula(model: Path):
    from ai_edge_litert.interpreter import Interpreter

    assert saturator_tflite_bytes(frame=FRAME) == model.read_bytes()  # deterministic
    interpreter = Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    detail_in = interpreter.get_input_details()[0]
    detail_out = interpreter.get_output_details()[0]
    assert list(detail_in["shape"]) == [1, FRAME] and list(detail_out["shape"]) == [1, FRAME]
    assert detail_in["dtype"] == detail_out["dtype"] == np.float32
    x = np.random.default_rng(5).uniform(-2.0, 2.0, (1, FRAME)).astype(np.float32)
    interpreter.set_tensor(detail_in["index"], x)
    interpreter.invoke()
    y = interpreter.get_tensor(detail_out["index"])
    assert np.max(np.abs(y - saturator_weights().apply(x))) < 1e-6
    assert np.max(np.abs(y - x)) > 0.1  # it saturates


@pytest.fixture(scope="module")
def runtime() -> TfliteRuntime:
    require_real_part(shutil.which("mmdebstrap") is not None and shutil.which("unshare") is not None,
                      "mmdebstrap and unshare", "apt-get install mmdebstrap util-linux")
    require_real_part(os.geteuid() == 0, "root (mmdebstrap --mode=root, chroot)", "run as root")
    started = time.monotonic()
    found = ensure_runtime(LocalExecutor(), load_config(REPO).cache_dir)
    print(f"TFLite runtime tree {found.root.name} ({found.version}) "
          f"ready in {time.monotonic() - started:.1f} s")
    return found


@pytest.fixture(scope="module")
def cli_project(model: Path, runtime: TfliteRuntime) -> Path:
    """A project holding the rendered plugin, at a fixed place in the cache so its
    build folder is reused (JUCE is compiled once); --force keeps the identity and
    re-renders the sources."""
    root = load_config(REPO).cache_dir / "test-builds" / "tflite-cli-project"
    new_plugin(NewPlugin("TfliteSaturator", "tflite", "effect", model), root / "plugins", force=True)
    return root


@pytest.fixture(scope="module")
def build(cli_project: Path) -> NativeBuild:
    require_native_build_tools()
    # No engine is given anywhere: build-native finds (or makes) sid's TFLite itself.
    done = run_task("build-native", "TfliteSaturator", "--json", project=cli_project, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = [json.loads(line) for line in done.stdout.splitlines()]
    print(f"TfliteSaturator built in {result['seconds']:.1f} s")
    return NativeBuild(load_project(cli_project / "plugins" / "TfliteSaturator"),
                       Path(result["bundle"]), Path(result["binary"]), result["seconds"])


def _in_tree(runtime: TfliteRuntime, host_dir: Path, *folders: Path) -> TreeExecutor:
    host = build_host(LocalExecutor(), host_dir)
    return TreeExecutor(runtime=runtime, host=LocalExecutor(),
                        folders=(host.host.parent, *(f.resolve() for f in folders)))


def test_plugin_links_the_engine_from_its_bundle(build: NativeBuild, runtime: TfliteRuntime):
    from elftools.elf.elffile import ELFFile

    with build.binary.open("rb") as f:
        dynamic = ELFFile(f).get_section_by_name(".dynamic")
        needed = [tag.needed for tag in dynamic.iter_tags() if tag.entry.d_tag == "DT_NEEDED"]
        runpath = [tag.runpath for tag in dynamic.iter_tags() if tag.entry.d_tag == "DT_RUNPATH"]
    assert runtime.library.name in needed and runpath == ["$ORIGIN"]
    assert (build.binary.parent / runtime.library.name).is_file()
    assert (build.bundle / "Contents" / "Resources" / "saturator.tflite").is_file()


@pytest.mark.parametrize("block", [64, 100])
def test_plugin_matches_the_tflite_interpreter(build: NativeBuild, runtime: TfliteRuntime,
                                               host_dir: Path, tmp_path: Path, block: int):
    rng = np.random.default_rng(block)
    frames = 4800
    audio = (rng.uniform(-1.0, 1.0, (2, frames)) * np.linspace(0.05, 1.5, frames)).astype(np.float32)
    write_wav(tmp_path / "in.wav", audio, SAMPLE_RATE)
    executor = _in_tree(runtime, host_dir, build.bundle, tmp_path)
    result = process_file([build.bundle], tmp_path / "in.wav", tmp_path / "out.wav", executor,
                          host_dir, block=block)
    out, rate = read_wav(tmp_path / "out.wav")
    expected = tflite_reference(build.project.model, audio, FRAME)
    assert rate == SAMPLE_RATE and out.shape == audio.shape
    # Inline (TFLite is real-time safe): frames of 64 over host blocks of any size lag
    # by at most 63 samples, the latency reported.
    latency = result["plugins"][0]["latency_samples"]
    assert latency == FRAME - 1
    error = delayed_error(out, expected, latency)
    print(f"block {block}: latency {latency}, max error vs the TFLite interpreter {error:.3g}")
    assert error < 1e-5
    assert np.max(np.abs(out - audio)) > 0.1  # the plugin did something (not pass-through)
    assert result["plugins"][0]["name"] == "TfliteSaturator" and result["frames"] == frames


def test_rt_check_finds_no_unsafe_call_in_tflite_invoke(build: NativeBuild, runtime: TfliteRuntime,
                                                        host_dir: Path):
    executor = _in_tree(runtime, host_dir, build.bundle)
    report = rt_check(build.bundle, executor, host_dir, blocks=10000, block=64, rate=SAMPLE_RATE)
    print(format_report(report))
    print(f"rt-check: unsafe {report.unsafe} (engine {report.engine_calls}, plugin "
          f"{report.plugin_unsafe}), p50 {report.p50_us:.1f} us, p99 {report.p99_us:.1f} us, "
          f"max {report.max_us:.1f} us, deadline {report.deadline_us:.1f} us")
    assert report.process_failures == 0
    assert report.deadline_us == pytest.approx(1e6 * 64 / SAMPLE_RATE)
    # The call counter was loaded inside the tree: it saw the plugin's one try-lock
    # per block (JUCE's, never waits), so a zero below is a measurement.
    assert report.non_blocking == {"pthread_mutex_trylock": 10000}
    assert report.calls_by_object("pthread_mutex_trylock") == {"TfliteSaturator.so": 10000}
    # Strict: TFLite's Invoke() runs in the arena AllocateTensors() made, so not even
    # the engine allocates or locks (unlike ONNX Runtime's Session::Run).
    assert report.unsafe == 0 and report.engine_calls == 0, format_report(report)
    assert report.passes() and "PASS" in format_report(report)
    assert report.p99_us < report.deadline_us


def test_rt_check_of_a_tflite_project_from_the_command_line(build: NativeBuild, cli_project: Path):
    # The host runs inside the sid tree with no flag for it: rt-check sees that the
    # bundle links sid's libtensorflow-lite.
    done = run_task("rt-check", "--plugin", "TfliteSaturator", "--blocks", "2000", "--json",
                    project=cli_project, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    (report,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert report["pass"] and report["unsafe"] == 0 and report["engine_calls"] == 0, report
    assert report["process_failures"] == 0 and report["blocks"] == 2000
    assert report["counts"].get("pthread_mutex_trylock") == 2000  # counted inside the tree


def test_native_tflite_without_root_is_a_one_line_error_naming_the_command():
    require_real_part(os.geteuid() == 0 and shutil.which("setpriv") is not None,
                      "root and setpriv (to run the CLI as another user)", "apt-get install util-linux")
    # Outside pytest's own temp folder, which only root may enter.
    with tempfile.TemporaryDirectory(prefix="elkbuild-nobody-") as folder:
        _build_native_as_nobody(Path(folder))


def _build_native_as_nobody(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(REPO / "plugins" / "OnsetClassifier", project / "plugins" / "OnsetClassifier")
    for path in [tmp_path, *tmp_path.rglob("*")]:
        os.chown(path, 65534, 65534)
    env = {"HOME": str(tmp_path), "ELKBUILD_CACHE": str(tmp_path / "cache"),
           "ELKBUILD_PROJECT_DIR": str(project), "ELKBUILD_USER_CONFIG": str(tmp_path / "none.yaml"),
           "PATH": os.environ["PATH"]}
    done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           sys.executable, "-m", "elkbuild.program", "--search-root", str(REPO),
                           "build-native", "OnsetClassifier"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert_one_line_error(done, "native TensorFlow Lite needs root", "sudo ./elk build-native NAME")
