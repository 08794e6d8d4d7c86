"""A detector trained on log-mel frames becomes a classifier plugin (--features log-mel):
built natively, run by elkbuild's VST3 host, its notes (one per run: the best class,
its score as velocity) equal an independent reference — librosa's features
(center=False, the same settings) through onnxruntime — at host blocks 64, 100 and
128, over a signal with known events; and its audio thread makes no unsafe call.
The model is tests/runtime/models/mel_detector.onnx (scripts/make_log_mel_model.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import write_wav
from native_fixtures import require_native_build_tools

from elkbuild.config import load_config
from elkbuild.executor import LocalExecutor
from elkbuild.plugin.features import FeatureFlags
from elkbuild.plugin.native_build import NativeBuild, build_native
from elkbuild.plugin.render import NewPlugin, new_plugin
from elkbuild.vst3host.rt_check import format_report, rt_check
from elkbuild.vst3host.run import chain_latency, process_file

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "tests" / "runtime" / "models"
MODEL = MODELS / "mel_detector.onnx"
SETTINGS = json.loads((MODELS / "mel_detector.features.json").read_text())
FIRST_NOTE = 60
# (start s, end s, class): a low tone, a high tone, a noise burst, another low tone.
EVENTS = ((0.30, 0.65, 1), (1.00, 1.35, 2), (1.70, 2.05, 3), (2.40, 2.75, 1))

pytestmark = pytest.mark.slow


def flags() -> FeatureFlags:
    s = SETTINGS
    return FeatureFlags(features="log-mel", sample_rate=s["sample_rate"], fft_size=s["fft_size"], hop=s["hop"],
                        every=s["every"], min_hz=s["min_hz"], max_hz=s["max_hz"], power=s["power"],
                        scale=s["scale"], norm=s["norm"], log=s["log"], floor=s["floor"])


def signal() -> np.ndarray:
    rate = SETTINGS["sample_rate"]
    rng = np.random.default_rng(5)
    t = np.arange(3 * rate) / rate
    audio = rng.normal(0, 3e-4, t.size)
    for (start, end, kind), hz in zip(EVENTS, (350.0, 3000.0, None, 250.0)):
        part = (t >= start) & (t < end)
        audio[part] += 0.3 * np.sin(2 * np.pi * hz * t[part]) if hz else rng.normal(0, 0.15, part.sum())
    return audio.astype(np.float32)


def reference(audio: np.ndarray) -> list[tuple[int, int, float]]:
    """(sample after the window, class, score) for every run, as the plugin must report them."""
    import librosa
    import onnxruntime as ort

    s = SETTINGS
    mel = librosa.feature.melspectrogram(
        y=audio, sr=s["sample_rate"], n_fft=s["fft_size"], hop_length=s["hop"], center=False,
        power=s["power"], n_mels=s["mel_bands"], fmin=s["min_hz"], fmax=s["max_hz"],
        htk=s["scale"] == "htk", norm="slaney" if s["norm"] == "slaney" else None)
    features = librosa.power_to_db(mel, ref=1.0, amin=s["floor"], top_db=None).astype(np.float32)
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    runs = []
    for last in range(s["frames"] - 1, features.shape[1], s["every"]):
        window = features[:, last - s["frames"] + 1:last + 1][None]
        scores = session.run(None, {"log_mel": window})[0][0]
        best = int(np.argmax(scores))
        runs.append((last * s["hop"] + s["fft_size"], best, float(scores[best])))
    return runs


@pytest.fixture(scope="module")
def detector_build() -> NativeBuild:
    require_native_build_tools()
    cache = load_config(REPO).cache_dir
    # Rendered in one place each run: the build is incremental (only the plugin's own
    # sources recompile when the template changes), not a fresh JUCE build.
    project = new_plugin(NewPlugin("MelDetector", "onnx", "classifier", MODEL, features=flags()),
                         cache / "test-builds" / "projects", force=True)
    return build_native(project.root, LocalExecutor(), cache, cache / "test-builds", jobs=2)


def test_the_reference_finds_the_known_events():
    # The model was trained for these classes: runs whose window lies inside an event
    # name it (so the comparison below is over real detections, not noise).
    runs = reference(signal())
    rate, seen = SETTINGS["sample_rate"], SETTINGS["fft_size"] + (SETTINGS["frames"] - 1) * SETTINGS["hop"]
    for start, end, kind in EVENTS:
        inside = [c for stamp, c, _ in runs if start * rate <= stamp - seen and stamp <= end * rate]
        assert inside and all(c == kind for c in inside), (start, kind, inside)
    quiet = [c for stamp, c, _ in runs if stamp < 0.3 * SETTINGS["sample_rate"]]
    assert quiet and set(quiet) == {0}


@pytest.mark.parametrize("block", [64, 100, 128])
def test_plugin_notes_equal_librosa_and_onnxruntime(detector_build: NativeBuild, host_dir: Path, tmp_path: Path,
                                                    block: int):
    audio = signal()
    wav_in, wav_out = tmp_path / "in.wav", tmp_path / "out.wav"
    write_wav(wav_in, audio[None], SETTINGS["sample_rate"])
    result = process_file([detector_build.bundle], wav_in, wav_out, LocalExecutor(), host_dir, block=block)
    latency = chain_latency(result)
    assert latency is not None and latency > 0
    expected = [(stamp + latency, FIRST_NOTE + c, score) for stamp, c, score in reference(audio)
                if stamp + latency < audio.size]
    got = [(n["sample"], n["note"], n["velocity"]) for n in result["notes"]]
    assert [(s, n) for s, n, _ in got] == [(s, n) for s, n, _ in expected]
    # Velocity is the score in MIDI's 7 bits: within one step of it.
    worst = max(abs(v - min(1.0, max(0.01, score))) for (_, _, v), (_, _, score) in zip(got, expected))
    print(f"block {block}: {len(got)} runs, classes and positions equal, latency {latency}, "
          f"worst velocity - score {worst:.4f}")
    assert worst <= 1 / 127 + 1e-6


def test_detector_makes_no_unsafe_call_on_the_audio_thread(detector_build: NativeBuild, host_dir: Path):
    report = rt_check(detector_build.bundle, LocalExecutor(), host_dir,
                      blocks=5000, block=64, rate=SETTINGS["sample_rate"])
    print(format_report(report))
    assert report.process_failures == 0
    assert report.unsafe == 0, format_report(report)
    assert report.passes()
