"""Per-block process() time of the example plugins against the real-time budget of
a 64-sample block at 48 kHz (1333 us), measured by rt-check's host on this machine;
the ratio is against the block's deadline.

Prints p50, p99 and max per block and the share of the budget they use, for each
block size asked for. x86_64 numbers: a Pi 4 (Cortex-A72 at 1.5 GHz) is several
times slower, so a share above ~20 % here deserves a look on the board.

    .venv/bin/python bench/inference_budget.py [--plugin NeuralSaturator] [--blocks 20000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from elkbuild.config import load_config  # noqa: E402
from elkbuild.executor import LocalExecutor  # noqa: E402
from elkbuild.plugin.identity import plugins_dir  # noqa: E402
from elkbuild.plugin.native_build import build_native  # noqa: E402
from elkbuild.vst3host.rt_check import rt_check  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugin", default="NeuralSaturator")
    parser.add_argument("--blocks", type=int, default=20000)
    parser.add_argument("--sizes", default="64,128,256")
    parser.add_argument("--rate", type=float, default=48000)
    args = parser.parse_args()

    cfg = load_config(REPO)
    executor = LocalExecutor()
    project = plugins_dir(cfg.root, cfg.get("project.plugins_dir")) / args.plugin
    built = build_native(project, executor, cfg.cache_dir, cfg.build_dir)
    print(f"{args.plugin}: process() per block on this machine, {args.blocks} blocks each")
    print(f"  {'block':>5}  {'deadline':>9}  {'p50':>8}  {'p99':>8}  {'max':>8}  p99/deadline")
    for size in (int(s) for s in args.sizes.split(",")):
        report = rt_check(built.bundle, executor, cfg.build_dir / "rt-check",
                          blocks=args.blocks, block=size, rate=args.rate)
        print(f"  {size:>5}  {report.deadline_us:7.0f}us  {report.p50_us:6.1f}us  "
              f"{report.p99_us:6.1f}us  {report.max_us:6.1f}us  "
              f"{report.p99_us / report.deadline_us:8.1%}   ({report.overruns} over)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
