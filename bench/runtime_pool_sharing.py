"""CPU of 8 decoupled LSTM instances (64 samples / 48 kHz, paced like a real-time
host) on one shared pool of 1 or 2 workers against a pool with as many workers as
instances, the thread-per-instance layout anira warns of (oversubscription).
Then two different plugin-like modules (each its own copy of libelkrt, as two
elkbuild plugins in one Sushi) x 4 instances, LSTM amp and frame-576 GRU, in one
process: threads and CPU with the process-wide pool (libelkrt_pool.so.1) against a
pool per plugin (ELKRT_POOL_SHARING=plugin).

    .venv/bin/python bench/runtime_pool_sharing.py [--instances 8] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import os
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

    build = build_runtime(load_config(REPO).cache_dir)
    tool = build.stream_tool
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
    plugins_in_one_process(build.build_dir, args.seconds, args.budget_ms)
    return 0


def plugins_in_one_process(build_dir: Path, seconds: float, budget_ms: float) -> None:
    print(f"2 different plugins x 4 decoupled instances (lstm_amp, gru_frame576) in one process, "
          f"{seconds:g} s paced; CPU per second of audio")
    plugins = [str(build_dir / f"libelkrt_pool_plugin_{name}.so") for name in ("a", "b")]
    argv = [str(build_dir / "elkrt_pool_host"), "--instances", "4", "--pace", "--budget-ms", str(budget_ms),
            "--blocks", str(int(seconds * 48000 / 64))]
    for model in ("lstm_amp", "gru_frame576"):
        argv += ["--model", str(MODELS / f"{model}.onnx"), "--roles", str(MODELS / f"{model}.roles")]
    layouts = [("process-wide pool, 1 worker", {"ELKRT_POOL_THREADS": "1"}),
               ("process-wide pool, 2 workers", {"ELKRT_POOL_THREADS": "2"}),
               ("a pool per plugin, 1 worker each", {"ELKRT_POOL_THREADS": "1", "ELKRT_POOL_SHARING": "plugin"})]
    for label, env in layouts:
        done = subprocess.run(argv + plugins, capture_output=True, text=True, check=True,
                              env={**os.environ, "ELKRT_POOL_PRIORITY": "0", **env})
        report = json.loads(done.stdout.strip().splitlines()[-1])
        underruns = ", ".join(f"{model} {p['underruns']}" for model, p in zip(("lstm", "gru"), report["plugins"]))
        # With an ONNX model loaded, ONNX Runtime adds one thread of its own to the pool workers.
        print(f"  {label}: {report['pools']} pool(s), {report['threads_running'] - report['threads_before']} "
              f"threads started by the plugins, CPU {report['cpu_seconds'] / report['seconds']:.3f}, "
              f"underruns (samples, 4 instances) {underruns}")


if __name__ == "__main__":
    sys.exit(main())
