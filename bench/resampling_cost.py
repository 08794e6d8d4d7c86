"""What converting rates costs a plugin's audio thread: the LSTM example trained at
44.1 kHz (its roles given `sample_rate 44100`) streamed inline through libelkrt at
48 kHz in stereo blocks of 64, with elkrt::ResamplingModel at each libsamplerate
quality, against the same model at its own rate with no conversion (the baseline,
ratio 1.00). Also the latency each quality adds. Unpaced, so the figures are CPU
time per block; x86_64 figures (a Pi 4 is several times slower).

    .venv/bin/python bench/resampling_cost.py [--seconds 5] [--block 64]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "runtime"))

from elkbuild.config import load_config  # noqa: E402
from runtime_build import build_runtime  # noqa: E402

MODELS = REPO / "tests" / "runtime" / "models"
QUALITIES = ("fastest", "medium", "best")


def run(tool: Path, roles: Path, signal: Path, folder: Path, block: int, rate: int,
        resample: str | None) -> tuple[dict, np.ndarray]:
    timings = folder / "timings.txt"
    argv = [str(tool), "--engine", "onnx", "--model", str(MODELS / "lstm_amp.onnx"), "--roles", str(roles),
            "--input", str(signal), "--output", str(folder / "out.f32"), "--block", str(block),
            "--channels", "2", "--rate", str(rate), "--mode", "inline", "--timings", str(timings)]
    if resample:
        argv += ["--resample", resample]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    micros = [float(line.split()[1]) * 1e6 for line in timings.read_text().splitlines()
              if line.startswith("block")]
    return json.loads(done.stdout.strip().splitlines()[-1]), np.array(micros)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--block", type=int, default=64)
    args = parser.parse_args()

    build = build_runtime(load_config(REPO).cache_dir)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        roles = folder / "lstm_amp_44k.roles"
        roles.write_text((MODELS / "lstm_amp.roles").read_text() + "sample_rate 44100\n")
        signal = folder / "in.f32"
        rng = np.random.default_rng(1)
        (0.3 * rng.standard_normal((int(args.seconds * 48000), 2))).astype(np.float32).tofile(signal)
        # The baseline: the model at its own rate (the host at 44.1 kHz), nothing converted.
        base_report, base = run(build.stream_tool, roles, signal, folder, args.block, 44100, None)
        deadline_us = args.block / 48000 * 1e6
        print(f"LSTM amp at 44.1 kHz, stereo blocks of {args.block} at 48 kHz (deadline {deadline_us:.0f} us), "
              f"{args.seconds:g} s, inline; per block p50 / p99 and the ratio of p50 to the baseline's")
        print(f"  {'baseline (44.1 kHz host)':<26} p50 {np.percentile(base, 50):7.1f} us  "
              f"p99 {np.percentile(base, 99):7.1f} us  ratio 1.00  latency {base_report['latency']}")
        for quality in QUALITIES:
            report, micros = run(build.stream_tool, roles, signal, folder, args.block, 48000, quality)
            ratio = np.percentile(micros, 50) / np.percentile(base, 50)
            print(f"  {'resample ' + quality:<26} p50 {np.percentile(micros, 50):7.1f} us  "
                  f"p99 {np.percentile(micros, 99):7.1f} us  ratio {ratio:4.2f}  latency {report['latency']} "
                  f"(converters {report['converter_delay']}, model {report['model_latency']} at 44.1 kHz)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
