"""A model trained at 44.1 kHz as a plugin in a 48 kHz host (Sushi on Elk runs at 48
kHz): `new-plugin --sample-rate 44100 --resample medium` on the LSTM amp example. Built
natively and run through elkbuild's VST3 host at 48 kHz with blocks of 64, 100 and 128,
its output must equal an independent chain in Python to 1e-5: the signal converted to
44.1 kHz by libsamplerate's Python binding (samplerate), the model streamed there with
onnxruntime (state carried), converted back, and delayed by the latency the plugin
reports; one sample off it must not match. Strict rt-check passes: libsamplerate
converts on the audio thread without an allocation or a lock. Without --resample the
plugin refuses to activate at 48 kHz, and at 44.1 kHz it runs unconverted.

One native build (about 30 s with JUCE's objects reused), three renders and an
rt-check of 2000 blocks (a few seconds each)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import read_wav, write_wav
from native_fixtures import require_native_build_tools

from elkbuild.config import load_config
from elkbuild.errors import BuildError
from elkbuild.executor import LocalExecutor
from elkbuild.plugin.native_build import NativeBuild, build_native
from elkbuild.plugin.render import NewPlugin, new_plugin
from elkbuild.plugin.roles import RoleFlags
from elkbuild.vst3host.rt_check import format_report, rt_check
from elkbuild.vst3host.run import process_file

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "runtime"))
from model_references import MODELS, converted_reference  # noqa: E402

HOST_RATE, MODEL_RATE = 48000, 44100
CONVERTER = "sinc_medium"   # the Python binding's name of --resample medium

pytestmark = pytest.mark.slow


def _build(name: str, resample: str | None) -> NativeBuild:
    require_native_build_tools()
    cache = load_config(REPO).cache_dir
    request = NewPlugin(name, "onnx", "effect", MODELS / "lstm_amp.onnx", resample=resample,
                        roles=RoleFlags(sample_rate=MODEL_RATE))
    project = new_plugin(request, cache / "test-builds" / "resampling-projects", force=True)
    built = build_native(project.root, LocalExecutor(), cache, cache / "test-builds", jobs=2)
    print(f"{name} built in {built.seconds:.1f} s")
    return built


@pytest.fixture(scope="module")
def resampling_build() -> NativeBuild:
    return _build("LstmAmp44k", "medium")


@pytest.mark.parametrize("block", [64, 100, 128])
def test_a_44k_model_in_a_48k_host_equals_the_converted_reference(resampling_build: NativeBuild, host_dir: Path,
                                                                  tmp_path: Path, block: int):
    rng = np.random.default_rng(block)
    frames = 24000
    audio = (rng.uniform(-1.0, 1.0, (2, frames)) * np.linspace(0.05, 1.0, frames)).astype(np.float32)
    write_wav(tmp_path / "in.wav", audio, HOST_RATE)
    result = process_file([resampling_build.bundle], tmp_path / "in.wav", tmp_path / "out.wav",
                          LocalExecutor(), host_dir, block=block, rate=HOST_RATE)
    out, rate = read_wav(tmp_path / "out.wav")
    latency = result["plugins"][0]["latency_samples"]
    assert rate == HOST_RATE and out.shape == audio.shape
    # The reference's end is libsamplerate flushing a finished signal, and the model's
    # last partial frame: compared up to a good margin before it.
    compared = frames - 3000 - latency
    expected = converted_reference("lstm_amp", audio, HOST_RATE, MODEL_RATE, CONVERTER)[:, :compared]

    def error(delay: int) -> float:
        # From the latency on: before it come the converters' band-limited pre-echo of
        # the signal's start, which the reference, starting at its first sample, lacks.
        return float(np.max(np.abs(out[:, delay:delay + compared] - expected)))

    print(f"LstmAmp44k, blocks of {block}: latency {latency}, max error vs converted reference {error(latency):.3g}")
    assert error(latency) < 1e-5
    assert error(latency + 1) > 1e-3 and error(latency - 1) > 1e-3
    # The model's latency at 44.1 kHz is padded to whole 147-sample steps: 160 samples
    # each at 48 kHz, plus the converters' look-ahead.
    assert latency > 160
    assert np.max(np.abs(out - audio)) > 0.01


def test_the_converting_plugin_passes_strict_rt_check(resampling_build: NativeBuild, host_dir: Path):
    report = rt_check(resampling_build.bundle, LocalExecutor(), host_dir, blocks=2000, block=64, rate=HOST_RATE)
    text = format_report(report)
    print(text)
    assert report.unsafe == 0 and report.process_failures == 0, text
    assert report.worker.models == 1 and not report.worker_late, text
    assert report.passes(), text


def test_without_resample_the_plugin_refuses_another_rate_and_runs_at_its_own(host_dir: Path, tmp_path: Path):
    plain = _build("LstmAmp44kPlain", None)
    audio = np.zeros((2, 4410), np.float32)
    audio[:, 100] = 0.5
    write_wav(tmp_path / "in.wav", audio, HOST_RATE)
    with pytest.raises(BuildError, match="the model runs at 44100 Hz but the host at 48000 Hz"):
        process_file([plain.bundle], tmp_path / "in.wav", tmp_path / "out.wav", LocalExecutor(), host_dir,
                     block=64, rate=HOST_RATE)
    write_wav(tmp_path / "in44.wav", audio, MODEL_RATE)
    result = process_file([plain.bundle], tmp_path / "in44.wav", tmp_path / "out44.wav", LocalExecutor(),
                          host_dir, block=64, rate=MODEL_RATE)
    out, _ = read_wav(tmp_path / "out44.wav")
    latency = result["plugins"][0]["latency_samples"]
    assert np.argmax(np.abs(out[0])) == 100 + latency   # unconverted: the skip path's impulse
