"""Make the example log-mel detector (tests/runtime/models/mel_detector.onnx).

A tiny CNN trained on librosa log-mel frames, the way users' onset, keyword and
event detectors are made: input log_mel [1, 32, 16] (32 mel bands, the last 16
frames, 0.1 s at 16 kHz), output scores [1, 4] (softmax) for four classes:
0 quiet (faint noise), 1 a low tone (200..500 Hz), 2 a high tone (2..4 kHz),
3 a noise burst. Trained for a few hundred steps on synthetic clips (seed 11), so
the test signal's events are classified as what they are.

Run with a Python that has torch, onnx and librosa (not elkbuild's .venv): the
model is committed, so CI needs none of them.

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.13.0 onnx onnxscript numpy librosa==0.11.0
    /tmp/torchenv/bin/python scripts/make_log_mel_model.py

The feature settings are written beside it (mel_detector.features.json): the
tests read them from there for `new-plugin` and for the librosa reference.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "runtime" / "models"
SETTINGS = {"sample_rate": 16000, "fft_size": 512, "hop": 160, "mel_bands": 32, "frames": 16,
            "every": 4, "min_hz": 0.0, "max_hz": 8000.0, "power": 2.0, "scale": "slaney",
            "norm": "slaney", "log": "db", "floor": 1e-10}
CLASSES = ("quiet", "low tone", "high tone", "noise burst")


def clip(kind: int, rng: np.random.Generator, samples: int, rate: int) -> np.ndarray:
    """One clip of a class, as the detector hears it."""
    t = np.arange(samples) / rate
    quiet = rng.normal(0, 10 ** rng.uniform(-4, -3), samples)
    if kind == 0:
        return quiet.astype(np.float32)
    if kind == 3:
        return (quiet + rng.normal(0, rng.uniform(0.05, 0.3), samples)).astype(np.float32)
    hz = rng.uniform(200, 500) if kind == 1 else rng.uniform(2000, 4000)
    return (quiet + rng.uniform(0.05, 0.5) * np.sin(2 * np.pi * hz * t + rng.uniform(0, 6.3))).astype(np.float32)


def log_mel(signal: np.ndarray) -> np.ndarray:
    """[mel_bands, frames] the way the plugin computes them (librosa, center=False)."""
    import librosa

    s = SETTINGS
    mel = librosa.feature.melspectrogram(
        y=signal, sr=s["sample_rate"], n_fft=s["fft_size"], hop_length=s["hop"], center=False,
        power=s["power"], n_mels=s["mel_bands"], fmin=s["min_hz"], fmax=s["max_hz"], htk=False, norm="slaney")
    return librosa.power_to_db(mel, ref=1.0, amin=s["floor"], top_db=None).astype(np.float32)


def main() -> None:
    import torch
    from torch import nn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    class Detector(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
            self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
            self.dense = nn.Linear(8, len(CLASSES))

        def forward(self, log_mel):  # [1, bands, frames] in dB
            x = (log_mel.unsqueeze(1) + 50.0) / 25.0
            x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
            x = torch.relu(self.conv2(x)).mean(dim=(2, 3))
            return torch.softmax(self.dense(x), dim=-1)

    s = SETTINGS
    samples = s["fft_size"] + (s["frames"] - 1) * s["hop"]
    rng = np.random.default_rng(11)
    torch.manual_seed(11)
    kinds = rng.integers(0, len(CLASSES), 1200)
    features = np.stack([log_mel(clip(int(k), rng, samples, s["sample_rate"])) for k in kinds])
    x, y = torch.from_numpy(features), torch.from_numpy(kinds)
    model = Detector()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    for step in range(300):
        batch = torch.from_numpy(rng.integers(0, len(kinds), 64))
        loss = nn.functional.nll_loss(torch.log(model(x[batch]) + 1e-9), y[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(x).argmax(dim=1) == y).float().mean())
    print(f"trained: loss {float(loss):.4f}, accuracy {accuracy:.3f} on {len(kinds)} clips")

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    path = out / "mel_detector.onnx"
    path.unlink(missing_ok=True)
    with torch.no_grad():
        torch.onnx.export(model, (torch.zeros(1, s["mel_bands"], s["frames"]),), str(path),
                          input_names=["log_mel"], output_names=["scores"], dynamo=True,
                          external_data=False, optimize=True)
    (out / "mel_detector.features.json").write_text(
        json.dumps({**SETTINGS, "classes": list(CLASSES)}, indent=2) + "\n")
    print(f"{path.name}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
