"""CPU of 8 decoupled LSTM instances (64 samples / 48 kHz, paced like a real-time
host) on one shared pool of 1 or 2 workers against a pool with as many workers as
instances, the thread-per-instance layout anira warns of (oversubscription).

    .venv/bin/python bench/runtime_pool_sharing.py [--instances 8] [--seconds 3]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lstm_amp")
    parser.add_argument("--instances", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--budget-ms", type=float, default=3.0)
    args = parser.parse_args()

    tool = build_runtime(load_config(REPO).cache_dir).stream_tool
    print(f"{args.instances} x {args.model}, decoupled, 64 samples / 48 kHz, {args.seconds:g} s paced; "
          f"CPU per second of audio (1.0 = one core)")
    with tempfile.TemporaryDirectory() as tmp:
        signal = Path(tmp) / "in.f32"
        (0.3 * np.random.default_rng(3).standard_normal(int(args.seconds * 48000))).astype(np.float32).tofile(signal)
        results = {}
        for threads in sorted({1, 2, args.instances}):
            done = subprocess.run([str(tool), "--model", str(MODELS / f"{args.model}.onnx"),
                                   "--roles", str(MODELS / f"{args.model}.roles"), "--input", str(signal),
                                   "--output", str(Path(tmp) / "out.f32"), "--mode", "decoupled", "--pace",
                                   "--rt-priority", "60", "--budget-ms", str(args.budget_ms),
                                   "--instances", str(args.instances), "--pool-threads", str(threads)],
                                  capture_output=True, text=True, check=True)
            report = json.loads(done.stdout.strip().splitlines()[-1])
            results[threads] = report["cpu_seconds"] / report["seconds"]
            label = "as many as instances" if threads == args.instances else "shared"
            print(f"  {threads} worker(s) ({label}): CPU {results[threads]:.3f}, "
                  f"underruns {report['underruns']} samples, host periods missed {report['host_late_blocks']}")
    print(f"  {args.instances} workers / 1 worker: {results[args.instances] / results[1]:.2f}x the CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
