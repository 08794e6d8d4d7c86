"""The ONNX effect example built natively (x86_64) and run in a real VST3 host
(pedalboard): its output must match onnxruntime's Python output to 1e-5."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import onnx_reference
from conftest import require_real_part
from native_fixtures import require_native_build_tools

from elkbuild.config import load_config
from elkbuild.executor import LocalExecutor
from elkbuild.plugin.native_build import NativeBuild

REPO = Path(__file__).resolve().parents[2]
SAMPLE_RATE = 48000


@pytest.mark.slow
def test_bundle_is_self_contained_and_headless(saturator_build: NativeBuild):
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    binary = saturator_build.binary
    assert binary.parent.name == "x86_64-linux"
    assert (binary.parent / "libonnxruntime.so.1").is_file()
    assert (saturator_build.bundle / "Contents" / "Resources" / "saturator.onnx").read_bytes() == \
        saturator_build.project.model.read_bytes()
    with binary.open("rb") as f:
        dynamic = next(s for s in ELFFile(f).iter_sections() if isinstance(s, DynamicSection))
        needed = [t.needed for t in dynamic.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
        runpath = [t.runpath for t in dynamic.iter_tags() if t.entry.d_tag == "DT_RUNPATH"]
    assert "libonnxruntime.so.1" in needed
    # The process-wide inference pool travels with it, found through $ORIGIN.
    assert "libelkrt_pool.so.1" in needed and (binary.parent / "libelkrt_pool.so.1").is_file()
    assert not [n for n in needed if n.startswith(("libX11", "libXext", "libcurl", "libwebkit", "libgtk"))]
    assert runpath == ["$ORIGIN"], "no absolute build path may stay in the plugin"


@pytest.mark.slow
@pytest.mark.parametrize("block", [512, 100])
def test_plugin_in_pedalboard_matches_onnxruntime(saturator_build: NativeBuild, block: int):
    import pedalboard

    plugin = pedalboard.load_plugin(str(saturator_build.bundle))
    assert plugin.name == "NeuralSaturator"
    rng = np.random.default_rng(block)
    audio = (rng.uniform(-1.0, 1.0, size=(2, 4800)) * np.linspace(0.05, 1.5, 4800)).astype(np.float32)
    # pedalboard reads the plugin's latency before it prepares it for a new block size
    # (the latency depends on the block: frame FIFO + whole blocks of worker time), so
    # the first render after a change is misaligned; it compensates from then on.
    plugin.process(audio[:, :block], SAMPLE_RATE, buffer_size=block, reset=True)
    out = plugin.process(audio, SAMPLE_RATE, buffer_size=block, reset=True)
    expected = onnx_reference(saturator_build.project.model, audio, frame=64)
    assert out.shape == audio.shape
    # It renders offline, so the plugin waits for its worker: exact, every run.
    assert np.max(np.abs(out - expected)) < 1e-5
    # The plugin did something: saturation changes loud samples a lot.
    assert np.max(np.abs(out - audio)) > 0.1


@pytest.mark.slow
def test_classifier_sources_compile_with_the_onnx_engine(tmp_path):
    """The classifier template's own sources (processor, queues, worker) and the
    runtime's ONNX engine compile against Debian's JUCE: switching its engine is a -D
    option, no re-render."""
    import subprocess

    from elkbuild.build.cmake import RUNTIME_DIR
    from elkbuild.build.engines import onnxruntime_headers, onnxruntime_wheel_library
    from elkbuild.plugin.project import load_project

    require_native_build_tools()
    project = load_project(REPO / "plugins" / "OnsetClassifier")
    cache = load_config(REPO).cache_dir
    include = onnxruntime_headers(LocalExecutor(), cache)
    build = tmp_path / "build"
    configure = subprocess.run(
        ["cmake", "-S", str(project.root), "-B", str(build), "-G", "Ninja",
         "-DCMAKE_BUILD_TYPE=Release", "-DELKBUILD_ENGINE=onnx", f"-DELKBUILD_RUNTIME_DIR={RUNTIME_DIR}",
         f"-DELKBUILD_ENGINE_INCLUDE_DIRS={include}",
         f"-DELKBUILD_ENGINE_LIBRARY={onnxruntime_wheel_library()}"],
        capture_output=True, text=True)
    assert configure.returncode == 0, configure.stderr[-2000:]
    objects = ["CMakeFiles/OnsetClassifier.dir/Source/PluginProcessor.cpp.o",
               "elkrt/CMakeFiles/elkrt.dir/src/onnx_engine.cpp.o"]
    compiled = subprocess.run(["nice", "-n", "10", "ninja", "-C", str(build), "-j", "2", *objects],
                              capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stdout[-3000:]
    for obj in objects:
        assert (build / obj).stat().st_size > 0


@pytest.mark.slow
def test_tflite_engine_compiles_against_debian_tflite_headers(tmp_path):
    """The runtime's TFLite engine (the C API) compiles against TensorFlow Lite's real
    headers (Debian's libtensorflow-lite-dev); linking needs a TFLite library built for
    the target."""
    import subprocess

    from elkbuild.build.cmake import RUNTIME_DIR
    from elkbuild.build.engines import tflite_headers

    require_real_part(shutil.which("g++") is not None, "a host C++ compiler", "apt-get install g++")
    include = tflite_headers(LocalExecutor(), load_config(REPO).cache_dir)
    obj = tmp_path / "tflite_engine.o"
    done = subprocess.run(["nice", "-n", "10", "g++", "-std=c++17", "-O1", "-Wall", "-Wextra",
                           "-Werror", "-c", f"-I{RUNTIME_DIR / 'include'}", "-isystem", str(include),
                           str(RUNTIME_DIR / "src" / "tflite_engine.cpp"), "-o", str(obj)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    from elftools.elf.elffile import ELFFile

    with obj.open("rb") as f:
        symbols = {s.name for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()}
    assert any("makeTfliteEngine" in name for name in symbols)
    assert "TfLiteInterpreterInvoke" in symbols
