"""The streaming example plugins built natively and run through elkbuild's VST3 host
at 48 kHz with host blocks of 64, 100 and 128: the output must equal the model's
streaming reference (tests/runtime/model_references.py, per channel) delayed by the
latency the plugin reports, to 1e-5.

- plugins/LstmAmp (lstm_amp.onnx): one LSTM layer + dense + skip, h/c carried.
- plugins/WaveNetAmp (wavenet.onnx + wavenet.onnx.data): dilated convolutions,
  receptive field 4093, a dynamic time axis fixed at frames of 2048 (new-plugin
  --frame 2048), the past streamed from a ring buffer.
- plugins/GruFrame576 (gru_frame576.onnx): frames of 576 samples, packed state, an
  int64 sample-rate constant and an extra output.

Each also passes strict rt-check: ONNX Runtime on elkrt's worker pool, nothing
unsafe on the audio thread, and the worker's report shows it kept up.

One native build per example (each a full JUCE build: 280-490 s cold on two
shared cores, about a second warm), three offline renders each (0.2-2 s) and an
rt-check of 2000 blocks each (about 3 s)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import read_wav, write_wav
from delayed import delayed_error
from native_fixtures import require_native_build_tools

from elkbuild.config import load_config
from elkbuild.executor import LocalExecutor
from elkbuild.plugin.native_build import NativeBuild, build_native
from elkbuild.vst3host.rt_check import format_report, rt_check
from elkbuild.vst3host.run import process_file

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "runtime"))
from model_references import MODELS, streaming_reference  # noqa: E402

SAMPLE_RATE = 48000

pytestmark = pytest.mark.slow

# plugin project: (model in tests/runtime/models, model frame)
EXAMPLES = {"LstmAmp": ("lstm_amp", 64), "WaveNetAmp": ("wavenet", 2048), "GruFrame576": ("gru_frame576", 576)}


@pytest.fixture(scope="module", params=list(EXAMPLES))
def example_build(request: pytest.FixtureRequest) -> NativeBuild:
    require_native_build_tools()
    cache = load_config(REPO).cache_dir
    built = build_native(REPO / "plugins" / request.param, LocalExecutor(), cache, cache / "test-builds", jobs=2)
    print(f"native build of {request.param}: {built.seconds:.1f} s")
    return built


@pytest.mark.parametrize("block", [64, 100, 128])
def test_example_plugin_matches_the_streaming_reference(example_build: NativeBuild, host_dir: Path,
                                                        tmp_path: Path, block: int):
    name = example_build.project.identity.name
    model, frame = EXAMPLES[name]
    assert example_build.project.model.read_bytes() == (MODELS / f"{model}.onnx").read_bytes()
    rng = np.random.default_rng(block)
    frames = 9600
    audio = (rng.uniform(-1.0, 1.0, (2, frames)) * np.linspace(0.05, 1.0, frames)).astype(np.float32)
    write_wav(tmp_path / "in.wav", audio, SAMPLE_RATE)
    result = process_file([example_build.bundle], tmp_path / "in.wav", tmp_path / "out.wav",
                          LocalExecutor(), host_dir, block=block, rate=SAMPLE_RATE)
    out, rate = read_wav(tmp_path / "out.wav")
    latency = result["plugins"][0]["latency_samples"]
    assert rate == SAMPLE_RATE and out.shape == audio.shape
    expected = streaming_reference(model, audio)
    # Compared up to the last sample the reference has (whole frames only).
    compared = min(frames, latency + frames // frame * frame)
    error = delayed_error(out[:, :compared], expected[:, :compared], latency)
    print(f"{name}, blocks of {block}: latency {latency}, max error vs streaming reference {error:.3g}")
    # ONNX Runtime runs on the worker pool: frame - 1 (frames over blocks of any size) + whole blocks.
    assert latency >= frame - 1 + block and (latency - (frame - 1)) % block == 0
    assert error < 1e-5
    # Shifted by a sample it must not match: the latency is exact.
    assert delayed_error(out[:, :compared], expected[:, :compared], latency + 1) > 1e-3
    # The model does something: its output is not its input.
    assert np.max(np.abs(out - audio)) > 0.01


def test_example_plugin_passes_strict_rt_check_in_real_time(example_build: NativeBuild, host_dir: Path):
    """Nothing unsafe on the audio thread for any example (ONNX Runtime runs on the
    worker pool), and the worker's report shows it kept up in real time. WaveNetAmp
    keeps up because its frame is 2048: at 64 samples a run recomputed the whole
    receptive field (4156 in, 64 out) in more than a block period, and rt-check
    failed it from the worker's report (test_model_gates keeps such a case)."""
    name = example_build.project.identity.name
    report = rt_check(example_build.bundle, LocalExecutor(), host_dir, blocks=2000, block=64, rate=SAMPLE_RATE)
    text = format_report(report)
    print(text)
    assert report.unsafe == 0 and report.process_failures == 0 and not report.late
    assert report.worker.models == 1 and report.worker.failed_runs == 0
    assert 0 < report.worker.p99_us and 0 < report.worker.budget_us
    assert report.worker.runs >= 2000 * 64 // EXAMPLES[name][1]  # one per frame and lane
    assert not report.worker_late and report.passes(), text
