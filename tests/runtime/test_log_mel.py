"""The runtime's log-mel front end (runtime/src/log_mel.cpp) against librosa, the
reference detectors are trained with: librosa.feature.melspectrogram(center=False)
then power_to_db (or a natural log), over a chirp with noise, fed to elkrt_features
in host blocks of 64, 100 and 128 samples. The filterbank is compared as well."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from runtime_build import onnx_runtime_build  # noqa: F401 (a fixture)

DB_TOLERANCE = 1e-4
"""dB: float32 output of double arithmetic; a wrong window, scale or norm is off by
tenths of a dB or more."""

SETTINGS = {
    "16k detector (slaney)": (16000, dict(n_fft=512, hop_length=160, n_mels=40), "db", []),
    "48k, htk, no norm, band-limited": (48000, dict(n_fft=2048, hop_length=480, n_mels=64, htk=True, norm=None,
                                                    fmin=40.0, fmax=12000.0), "db",
                                        ["--scale", "htk", "--norm", "none", "--min-hz", "40", "--max-hz", "12000"]),
    "22.05k, magnitude, natural log": (22050, dict(n_fft=1024, hop_length=256, n_mels=128, power=1.0), "ln",
                                       ["--power", "1", "--log", "ln", "--floor", "1e-6"]),
}


def _signal(rate: int) -> np.ndarray:
    t = np.arange(int(rate * 1.5)) / rate
    chirp = 0.4 * np.sin(2 * np.pi * (100 + rate / 6 * t) * t)
    noise = 0.02 * np.random.default_rng(rate).standard_normal(t.size)
    return (chirp + noise).astype(np.float32)


def _reference(signal: np.ndarray, rate: int, options: dict, log: str) -> tuple[np.ndarray, np.ndarray]:
    import librosa

    power = options.get("power", 2.0)
    mel = librosa.feature.melspectrogram(y=signal.astype(np.float64), sr=rate, center=False,
                                         window="hann", **options)
    features = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None) if log == "db" \
        else np.log(mel + 1e-6)
    bank = librosa.filters.mel(sr=rate, n_fft=options["n_fft"], n_mels=options["n_mels"],
                               fmin=options.get("fmin", 0.0), fmax=options.get("fmax"),
                               htk=options.get("htk", False), norm=options.get("norm", "slaney"),
                               dtype=np.float64)
    assert power in (1.0, 2.0)
    return features, bank


@pytest.mark.parametrize("name", list(SETTINGS))
@pytest.mark.parametrize("block", [64, 100, 128])
def test_log_mel_matches_librosa(onnx_runtime_build, tmp_path, name, block):  # noqa: F811
    rate, options, log, flags = SETTINGS[name]
    signal = _signal(rate)
    signal.tofile(tmp_path / "in.f32")
    argv = [str(onnx_runtime_build.build_dir / "elkrt_features"), str(tmp_path / "in.f32"),
            str(tmp_path / "out.f32"), "--sample-rate", str(rate), "--fft", str(options["n_fft"]),
            "--hop", str(options["hop_length"]), "--bands", str(options["n_mels"]),
            "--block", str(block), "--filterbank", str(tmp_path / "bank.f64"), *flags]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    expected, bank = _reference(signal, rate, options, log)
    ours = np.fromfile(tmp_path / "out.f32", dtype=np.float32).reshape(-1, options["n_mels"]).T
    assert ours.shape == expected.shape
    assert np.max(np.abs(ours - expected)) < DB_TOLERANCE
    ours_bank = np.fromfile(tmp_path / "bank.f64").reshape(options["n_mels"], -1)
    assert np.max(np.abs(ours_bank - bank)) < 1e-9 * max(1.0, float(np.max(bank)))


def test_the_tool_refuses_settings_by_name(onnx_runtime_build, tmp_path):  # noqa: F811
    np.zeros(1000, dtype=np.float32).tofile(tmp_path / "in.f32")
    done = subprocess.run([str(onnx_runtime_build.build_dir / "elkrt_features"), str(tmp_path / "in.f32"),
                           str(tmp_path / "out.f32"), "--fft", "500"], capture_output=True, text=True)
    assert done.returncode == 2 and "fft_size must be a power of two" in done.stderr
