"""The stateful LSTM amp example (plugins/LstmAmp, from tests/runtime/models/lstm_amp.onnx:
one LSTM layer + dense + skip, h/c carried) built natively and run through elkbuild's
VST3 host at 48 kHz with host blocks of 64, 100 and 128: the output must equal the
model's streaming reference (onnxruntime over the whole signal, state carried from
frame to frame, per channel) delayed by the latency the plugin reports, to 1e-5.

One native build (~1.5-3 min cold, seconds warm) and three offline renders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audio_helpers import read_wav, write_wav
from delayed import delayed_error
from native_fixtures import require_native_build_tools

from elkbuild.config import load_config
from elkbuild.executor import LocalExecutor
from elkbuild.plugin.native_build import NativeBuild, build_native
from elkbuild.vst3host.run import process_file

REPO = Path(__file__).resolve().parents[2]
SAMPLE_RATE = 48000
FRAME = 64

pytestmark = pytest.mark.slow


def streaming_reference(model: Path, audio: np.ndarray) -> np.ndarray:
    """onnxruntime frame by frame, h and c fed back, each channel on its own (the
    plugin runs a mono model once per host channel, each with its own state)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    out = np.zeros_like(audio)
    for channel in range(audio.shape[0]):
        h = np.zeros((1, 1, 12), np.float32)
        c = np.zeros((1, 1, 12), np.float32)
        for start in range(0, audio.shape[1] - FRAME + 1, FRAME):
            x = audio[channel, start:start + FRAME].reshape(1, FRAME, 1)
            y, h, c = session.run(["y", "h_out", "c_out"], {"x": x, "h": h, "c": c})
            out[channel, start:start + FRAME] = y.ravel()
    return out


@pytest.fixture(scope="module")
def lstm_build() -> NativeBuild:
    require_native_build_tools()
    cache = load_config(REPO).cache_dir
    built = build_native(REPO / "plugins" / "LstmAmp", LocalExecutor(), cache, cache / "test-builds", jobs=2)
    print(f"native build of LstmAmp: {built.seconds:.1f} s")
    return built


@pytest.mark.parametrize("block", [64, 100, 128])
def test_lstm_plugin_matches_the_streaming_reference(lstm_build: NativeBuild, tmp_path: Path, block: int):
    rng = np.random.default_rng(block)
    frames = 9600
    audio = (rng.uniform(-1.0, 1.0, (2, frames)) * np.linspace(0.05, 1.0, frames)).astype(np.float32)
    write_wav(tmp_path / "in.wav", audio, SAMPLE_RATE)
    host_dir = load_config(REPO).cache_dir / "test-builds" / "vst3host"
    result = process_file([lstm_build.bundle], tmp_path / "in.wav", tmp_path / "out.wav",
                          LocalExecutor(), host_dir, block=block, rate=SAMPLE_RATE)
    out, rate = read_wav(tmp_path / "out.wav")
    latency = result["plugins"][0]["latency_samples"]
    expected = streaming_reference(lstm_build.project.model, audio)
    error = delayed_error(out, expected, latency)
    print(f"LstmAmp, blocks of {block}: latency {latency}, max error vs streaming reference {error:.3g}")
    assert rate == SAMPLE_RATE and out.shape == audio.shape
    # ONNX Runtime runs on the worker pool: 63 (frames over blocks of any size) + whole blocks.
    assert latency >= FRAME - 1 + block and (latency - (FRAME - 1)) % block == 0
    assert error < 1e-5
    # State matters: resetting it every frame would be audibly different.
    assert np.max(np.abs(out - audio)) > 0.01
