"""libelkrt's TFLite engine (the C API, tensors by index) with a stateful model:
the LSTM cell example streamed by elkrt_stream at host blocks of 64, 100 and 128,
inline and decoupled, against the LiteRT interpreter in Python with h/c carried.

The host has no TFLite library; Debian sid's libtensorflow-lite exports the C API,
so elkrt is built against elkbuild's sid tree and elkrt_stream runs inside it."""

from __future__ import annotations

import json
import os
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from conftest import require_real_part

from elkbuild.config import load_config
from elkbuild.errors import ElkbuildError

REPO = Path(__file__).resolve().parents[2]
MODELS = Path(__file__).resolve().parent / "models"
SAMPLE_RATE = 48000
SIGNAL_SAMPLES = 32000    # a multiple of 64, 100 and 128
TOLERANCE = 1e-5

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tflite_build():
    require_real_part(shutil.which("cmake") is not None and shutil.which("c++") is not None,
                      "cmake and a host C++ compiler", "apt-get install cmake g++ ninja-build")
    require_real_part(shutil.which("mmdebstrap") is not None and shutil.which("unshare") is not None,
                      "mmdebstrap and unshare", "apt-get install mmdebstrap util-linux")
    require_real_part(os.geteuid() == 0, "root (mmdebstrap --mode=root, chroot)", "run as root")
    from runtime_build import build_runtime

    try:
        build = build_runtime(load_config(REPO).cache_dir, engine_name="tflite")
    except ElkbuildError as error:
        require_real_part(False, "Debian sid's TensorFlow Lite tree", str(error))
    print(f"runtime build (tflite): {build.seconds:.1f} s")
    return build


@lru_cache(maxsize=None)
def signal() -> np.ndarray:
    t = np.arange(SIGNAL_SAMPLES) / SAMPLE_RATE
    noise = 0.05 * np.random.default_rng(7).standard_normal(SIGNAL_SAMPLES)
    return (0.6 * np.sin(2 * np.pi * 220 * t) + noise).astype(np.float32)


@lru_cache(maxsize=None)
def reference() -> np.ndarray:
    """Frame by frame through LiteRT's interpreter, h and c carried (built-in kernels,
    as the C API's default interpreter runs them)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(MODELS / "lstm_cell.tflite"),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    inputs = {d["name"]: d for d in interpreter.get_input_details()}
    outputs = {d["name"]: d for d in interpreter.get_output_details()}
    h = np.zeros(inputs["h"]["shape"], np.float32)
    c = np.zeros(inputs["c"]["shape"], np.float32)
    x = signal()
    frames = []
    for start in range(0, len(x), 64):
        interpreter.set_tensor(inputs["x"]["index"], x[start:start + 64].reshape(1, 64))
        interpreter.set_tensor(inputs["h"]["index"], h)
        interpreter.set_tensor(inputs["c"]["index"], c)
        interpreter.invoke()
        frames.append(interpreter.get_tensor(outputs["y"]["index"]).ravel().copy())
        h = interpreter.get_tensor(outputs["h_out"]["index"]).copy()
        c = interpreter.get_tensor(outputs["c_out"]["index"]).copy()
    return np.concatenate(frames)


@pytest.mark.parametrize("mode", ["inline", "decoupled"])
@pytest.mark.parametrize("block", [64, 100, 128])
def test_tflite_lstm_cell_streams_like_the_interpreter(tflite_build, tmp_path, block, mode):
    from runtime_build import run_in_tree

    signal().tofile(tmp_path / "in.f32")
    argv = [str(tflite_build.stream_tool), "--engine", "tflite", "--model", str(MODELS / "lstm_cell.tflite"),
            "--roles", str(MODELS / "lstm_cell.roles"), "--input", str(tmp_path / "in.f32"),
            "--output", str(tmp_path / "out.f32"), "--block", str(block), "--mode", mode]
    if mode == "decoupled":
        argv += ["--offline", "--budget-ms", "3"]
    done = run_in_tree(tflite_build, argv, [MODELS, tmp_path])
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["engine"] == "tensorflow-lite" and report["decoupled"] == (mode == "decoupled")
    assert report["underruns"] == 0 and report["failed_runs"] == 0, report
    output = np.fromfile(tmp_path / "out.f32", np.float32)
    latency = report["latency"]
    expected = reference()
    assert np.all(output[:latency] == 0.0)
    compared = len(output) - latency
    error = float(np.max(np.abs(output[latency:] - expected[:compared])))
    print(f"lstm_cell.tflite {mode} block {block}: latency {latency}, max abs error {error:.2e}")
    assert error <= TOLERANCE
    assert np.max(np.abs(output[latency:] - signal()[:compared])) > 0.01, "the model changes the signal"


def test_tflite_example_is_reproducible():
    # Made from numpy with a fixed seed: the committed file is what the script makes.
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_runtime_models", REPO / "scripts" / "make_runtime_models.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.lstm_cell_tflite() == (MODELS / "lstm_cell.tflite").read_bytes()
