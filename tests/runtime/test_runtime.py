"""runtime/ (libelkrt): its C++ unit tests through ctest, and the example models
streamed by elkrt_stream at host blocks of 64, 100 and 128, inline and decoupled,
against a streaming reference computed here with plain onnxruntime calls (the
whole signal, state carried, full past), shifted by the latency elkrt reports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from model_references import REFERENCES, session_of
from runtime_build import onnx_runtime_build as runtime_build  # noqa: F401 (a fixture)


REPO = Path(__file__).resolve().parents[2]
MODELS = Path(__file__).resolve().parent / "models"
SAMPLE_RATE = 48000
SIGNAL_SAMPLES = 48000    # a multiple of 64, 100 and 128: every host block is full
TOLERANCE = 1e-5
MIN_CTEST_CASES = 32


def test_ctest_passes(runtime_build):
    done = subprocess.run(["ctest", "--output-on-failure", "-j2"], cwd=runtime_build.build_dir,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    summary = re.search(r"(\d+)% tests passed, (\d+) tests failed out of (\d+)", done.stdout)
    assert summary, done.stdout[-2000:]
    assert summary.group(2) == "0"
    assert int(summary.group(3)) >= MIN_CTEST_CASES, f"only {summary.group(3)} ctest cases ran"


# ---- Python streaming references (onnxruntime only, nothing of elkrt) --------------

@lru_cache(maxsize=None)
def signal_under_test() -> np.ndarray:
    rng = np.random.default_rng(2026)
    t = np.arange(SIGNAL_SAMPLES) / SAMPLE_RATE
    tone = 0.5 * np.sin(2 * np.pi * 110 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
    return (tone + 0.05 * rng.standard_normal(SIGNAL_SAMPLES)).astype(np.float32)


@lru_cache(maxsize=None)
def reference(model: str) -> np.ndarray:
    return REFERENCES[model](signal_under_test())


def stream(build, model: str, block: int, tmp_path: Path, *extra: str) -> tuple[np.ndarray, dict]:
    source, result = tmp_path / "in.f32", tmp_path / "out.f32"
    signal_under_test().tofile(source)
    done = subprocess.run([str(build.stream_tool), "--engine", "onnx",
                           "--model", str(MODELS / f"{model}.onnx"), "--roles", str(MODELS / f"{model}.roles"),
                           "--input", str(source), "--output", str(result), "--block", str(block),
                           "--rate", str(SAMPLE_RATE), *extra],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    return np.fromfile(result, np.float32), json.loads(done.stdout.strip().splitlines()[-1])


def check_against_reference(output: np.ndarray, report: dict, model: str) -> float:
    expected = reference(model)
    latency = report["latency"]
    assert report["underruns"] == 0 and report["overruns"] == 0 and report["failed_runs"] == 0, report
    assert np.all(output[:latency] == 0.0), "before the latency only the FIFO's zeros may come out"
    compared = min(len(expected), len(output) - latency)
    assert compared >= SIGNAL_SAMPLES // 2, f"latency {latency} leaves too little to compare"
    error = float(np.max(np.abs(output[latency:latency + compared] - expected[:compared])))
    # Shifted by one sample either way it must not match: the latency is exact.
    for wrong in (latency - 1, latency + 1):
        if 0 <= wrong and wrong + compared <= len(output):
            assert np.max(np.abs(output[wrong:wrong + compared] - expected[:compared])) > 100 * TOLERANCE
    print(f"{model}: latency {latency}, max abs error {error:.2e}")
    assert error <= TOLERANCE, f"{model}: max abs error {error:.3g} at latency {latency}"
    return error


@pytest.mark.slow
@pytest.mark.parametrize("block", [64, 100, 128])
@pytest.mark.parametrize("model", ["lstm_amp", "wavenet", "gru_frame576"])
def test_inline_stream_equals_python_reference(runtime_build, tmp_path, model, block):
    output, report = stream(runtime_build, model, block, tmp_path, "--mode", "inline")
    assert not report["decoupled"]
    frame = 576 if model == "gru_frame576" else 64
    gcd = np.gcd(frame, block)
    assert report["latency"] == frame - gcd, "inline latency is F - gcd(F, H)"
    check_against_reference(output, report, model)


@pytest.mark.slow
@pytest.mark.parametrize("block", [64, 100, 128])
@pytest.mark.parametrize("model", ["lstm_amp", "wavenet", "gru_frame576"])
def test_decoupled_offline_stream_equals_python_reference(runtime_build, tmp_path, model, block):
    # Offline: the audio thread waits for the pool's worker, so the run is repeatable.
    output, report = stream(runtime_build, model, block, tmp_path, "--mode", "decoupled", "--offline",
                            "--budget-ms", "3")
    assert report["decoupled"]
    frame = 576 if model == "gru_frame576" else 64
    blocks = int(np.ceil((0.003 + 0.00025) * SAMPLE_RATE / block))
    assert report["latency"] == frame - np.gcd(frame, block) + blocks * block
    check_against_reference(output, report, model)


@pytest.mark.slow
def test_decoupled_realtime_lstm_keeps_up_and_is_exact(runtime_build, tmp_path):
    # Paced like a real-time host at 64 samples / 48 kHz; a generous budget on a shared machine.
    output, report = stream(runtime_build, "lstm_amp", 64, tmp_path, "--mode", "decoupled", "--pace",
                            "--budget-ms", "20")
    assert report["decoupled"]
    check_against_reference(output, report, "lstm_amp")


def test_refusals_name_the_tensor(runtime_build, tmp_path):
    roles = tmp_path / "bad.roles"
    roles.write_text("input x audio time=1 channel=2\noutput y audio time=1 channel=2\n")
    signal_under_test().tofile(tmp_path / "in.f32")
    done = subprocess.run([str(runtime_build.stream_tool), "--model", str(MODELS / "lstm_amp.onnx"),
                           "--roles", str(roles), "--input", str(tmp_path / "in.f32"),
                           "--output", str(tmp_path / "out.f32")], capture_output=True, text=True)
    assert done.returncode != 0
    assert "input 'h'" in done.stderr and "has no role" in done.stderr, done.stderr
    missing = subprocess.run([str(runtime_build.stream_tool), "--model", str(tmp_path / "none.onnx"),
                              "--roles", str(MODELS / "lstm_amp.roles"), "--input", str(tmp_path / "in.f32"),
                              "--output", str(tmp_path / "out.f32")], capture_output=True, text=True)
    assert missing.returncode != 0 and "none.onnx" in missing.stderr


def test_example_models_are_small():
    for path in MODELS.iterdir():
        assert path.stat().st_size < 1_000_000, f"{path.name} is {path.stat().st_size} bytes"
    assert (MODELS / "wavenet.onnx.data").is_file(), "the WaveNet example keeps torch's external-data layout"


@pytest.mark.slow
def test_a_project_links_the_runtime_through_the_cmake_module(runtime_build):
    # What a plugin project does: include ElkRuntime.cmake and elkrt_add(); no runtime sources.
    consumer = Path(__file__).resolve().parent / "consumer"
    build_dir = runtime_build.build_dir.parent / f"consumer-{runtime_build.build_dir.name}"
    if not (build_dir / "CMakeCache.txt").is_file():
        configure = subprocess.run(["cmake", "-S", str(consumer), "-B", str(build_dir), "-G",
                                    "Ninja" if shutil.which("ninja") else "Unix Makefiles",
                                    "-DCMAKE_BUILD_TYPE=Release", f"-DELKBUILD_RUNTIME_DIR={REPO / 'runtime'}",
                                    f"-DENGINE_INCLUDE_DIR={runtime_build.engine.include_dirs[0]}",
                                    f"-DENGINE_LIBRARY={runtime_build.engine.library}"],
                                   capture_output=True, text=True)
        assert configure.returncode == 0, configure.stdout + configure.stderr
    built = subprocess.run(["nice", "-n", "10", "cmake", "--build", str(build_dir), "-j", "2"],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-2000:]
    assert not (build_dir / "elkrt" / "elkrt_tests").exists(), "a consumer builds no runtime tests"
    ran = subprocess.run([str(build_dir / "consumer"), str(MODELS / "lstm_amp.onnx"), str(MODELS / "lstm_amp.roles")],
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    latency, first = re.match(r"latency (\d+) first (\S+)", ran.stdout).groups()
    assert latency == "0"
    session = session_of("lstm_amp")
    hidden = session.get_inputs()[1].shape[2]
    zeros = np.zeros((1, 1, hidden), np.float32)
    y, _, _ = session.run(None, {"x": np.full((1, 64, 1), 0.25, np.float32), "h": zeros, "c": zeros})
    assert abs(float(first) - float(y.ravel()[0])) <= TOLERANCE
