"""The LSTM example through libelkrt at 64 samples / 48 kHz: the audio thread's
time per block inline (it runs the model) and decoupled (it only moves samples
through lock-free queues), against the block deadline; and the pool worker's
inference time per frame against the latency budget decoupled mode reports.

Both runs are paced like a real-time host (one block per block period, the
streaming thread at SCHED_FIFO 60 when allowed, the pool's worker at 40), with
the same signal. x86_64 figures; a Pi 4 is several times slower.

    .venv/bin/python bench/runtime_inline_vs_decoupled.py [--seconds 5] [--model lstm_amp]
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
AUDIO_PRIORITY = 60   # SCHED_FIFO, above the pool's workers (40), as a host's audio thread


def run(tool: Path, model: str, block: int, rate: int, signal: Path, folder: Path, mode: str,
        budget_ms: float = 0.0) -> tuple[dict, dict, np.ndarray]:
    timings, output = folder / "timings.txt", folder / "out.f32"
    done = subprocess.run([str(tool), "--engine", "onnx", "--model", str(MODELS / f"{model}.onnx"),
                           "--roles", str(MODELS / f"{model}.roles"), "--input", str(signal),
                           "--output", str(output), "--block", str(block), "--rate", str(rate),
                           "--mode", mode, "--pace", "--timings", str(timings), "--rt-priority", str(AUDIO_PRIORITY),
                           "--budget-ms", str(budget_ms)],
                          capture_output=True, text=True, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    values: dict[str, list[float]] = {"block": [], "worker": []}
    for line in timings.read_text().splitlines():
        kind, seconds = line.split()
        values[kind].append(float(seconds))
    return report, {kind: np.array(v) * 1e6 for kind, v in values.items()}, np.fromfile(output, np.float32)


def row(label: str, micros: np.ndarray, limit_us: float) -> str:
    p50, p99, peak = np.percentile(micros, 50), np.percentile(micros, 99), micros.max()
    return (f"  {label:<26} p50 {p50:8.1f} us  p99 {p99:8.1f} us  max {peak:8.1f} us   "
            f"p99/limit {p99 / limit_us:6.1%}  max/limit {peak / limit_us:6.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lstm_amp")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--block", type=int, default=64)
    parser.add_argument("--rate", type=int, default=48000)
    parser.add_argument("--fixed-budget-ms", type=float, default=3.0)
    args = parser.parse_args()

    build = build_runtime(load_config(REPO).cache_dir)
    deadline_us = args.block / args.rate * 1e6
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        signal = folder / "in.f32"
        rng = np.random.default_rng(1)
        (0.3 * rng.standard_normal(int(args.seconds * args.rate))).astype(np.float32).tofile(signal)
        inline_report, inline, inline_out = run(build.stream_tool, args.model, args.block, args.rate, signal,
                                                folder, "inline")
        print(f"{args.model}: {args.seconds:g} s at {args.rate} Hz, host block {args.block} "
              f"(deadline {deadline_us:.0f} us), model frame {inline_report['frame']}")
        if not inline_report.get("audio_realtime"):
            print(" (no right to real-time scheduling: the figures include other processes' interference)")
        print(f" inline: latency {inline_report['latency']} samples")
        print(row("audio thread per block", inline["block"], deadline_us))
        exact = True
        # The measured budget (2 x the slowest of a few runs in prepare), then a fixed 3 ms.
        for budget_ms in (0.0, args.fixed_budget_ms):
            report, decoupled, out = run(build.stream_tool, args.model, args.block, args.rate, signal, folder,
                                         "decoupled", budget_ms)
            frame, latency = report["frame"], report["latency"]
            adapt = frame - int(np.gcd(frame, args.block))
            budget_us = (latency - adapt) / args.rate * 1e6
            same = np.array_equal(inline_out[:len(out) - latency], out[latency:])
            exact = exact and (same or report["underruns"] > 0)
            how = f"{budget_ms:g} ms given" if budget_ms else "measured"
            print(f" decoupled, budget {how}: latency {latency} samples (ceil(I/H)*H = {budget_us:.0f} us), "
                  f"underruns {report['underruns']} samples, equal to inline delayed: {'yes' if same else 'no'}, "
                  f"host periods missed {report['host_late_blocks']}")
            print(row("audio thread per block", decoupled["block"], deadline_us))
            print(row("worker inference per frame", decoupled["worker"], budget_us))
            ratio = np.percentile(inline["block"], 99) / np.percentile(decoupled["block"], 99)
            print(f"  audio thread p99, inline / decoupled: {ratio:.0f}x")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
