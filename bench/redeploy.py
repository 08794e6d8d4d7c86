"""Redeploy speed on the emulated board, side by side with `scp -r` of the same payload.

    .venv/bin/python bench/redeploy.py [--rounds 3] [--size-mb 16] [--health 0.5]

Starts an emulated Elk board of its own (arm64 sshd under qemu), deploys one
plugin bundle (binary + model) and a Sushi config, then times, each as the median
of --rounds runs:
  full      a first deploy to an empty board (sends everything, starts Sushi)
  unchanged a redeploy with nothing changed (sends nothing, touches nothing)
  one-file  a redeploy after retraining the model (sends one file, restarts Sushi)
  scp -r    the manual way: copy the whole payload again
and prints each time and its ratio to scp -r (below 1.0: elkbuild is faster).
A deploy also restarts Sushi and waits out its health window (--health seconds);
scp does neither, so the ratios are conservative.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from elkbuild.deploy import deployer, payload as dep  # noqa: E402
from elkbuild.emulated_board import EmulatedBoard, free_port  # noqa: E402
from elkbuild.executor import LocalExecutor  # noqa: E402
from elkbuild.sushi.service import settings_for  # noqa: E402

from deploy.helpers import board_profile, make_bundle, sushi_config  # noqa: E402


def median_time(action, rounds: int, before=None) -> float:
    times = []
    for i in range(rounds):
        if before:
            before(i)
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mb", type=float, default=16.0,
                        help="size of the plugin binary, about that of a plugin with ONNX "
                             "Runtime inside (the model is a third of it)")
    parser.add_argument("--health", type=float, default=0.5, help="health window in seconds")
    args = parser.parse_args()

    cache = Path(os.environ.get("ELKBUILD_CACHE", "~/.cache/elkbuild")).expanduser()
    board = EmulatedBoard(LocalExecutor(), cache, name=f"bench-{os.getpid()}", port=free_port())
    print(f"starting an emulated board on port {board.port} ...", flush=True)
    board.up()
    work = Path(tempfile.mkdtemp(prefix="elkbuild-bench-"))
    try:
        board.reset()
        profile = board_profile(board, work)
        size = int(args.size_mb * 1_000_000)
        bundle = make_bundle(work, "Bench", size=size)
        model = bundle / "Contents" / "Resources" / "model.onnx"
        model.write_bytes(os.urandom(size // 3))
        config = sushi_config(work / "bench.json", "Bench")
        settings = settings_for(profile, health_seconds=args.health)
        payload_bytes = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file()) \
            + config.stat().st_size

        def deploy() -> deployer.DeployResult:
            payload = dep.collect_payload([bundle], (config.name, config.read_bytes(), "bench"))
            result = deployer.deploy_to_board(profile, payload, settings)
            if not result.ok:
                raise SystemExit(f"deploy failed: {result.message}")
            return result

        def wipe(_: int) -> None:
            board.reset()

        full = median_time(deploy, args.rounds, before=wipe)
        unchanged = median_time(deploy, args.rounds)
        sent: list[int] = []

        def retrain(i: int) -> None:
            model.write_bytes(os.urandom(size // 3 + i + 1))

        def deploy_one() -> None:
            sent.append(deploy().bytes_sent)

        one_file = median_time(deploy_one, args.rounds, before=retrain)
        known = work / "known_hosts"
        target = f"{board.user}@{board.host}:/udata/scp-baseline"
        scp_argv = ["scp", "-q", "-r", "-P", str(board.port), "-i", str(board.client_key),
                    "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
                    "-o", "BatchMode=yes", str(bundle), str(config), target]

        def scp_prepare(_: int) -> None:
            board.run(["rm", "-rf", "/udata/scp-baseline"])
            board.run(["install", "-d", "-o", "mind", "-g", "mind", "/udata/scp-baseline"])

        def scp() -> None:
            subprocess.run(scp_argv, check=True)

        baseline = median_time(scp, args.rounds, before=scp_prepare)

        print(f"\npayload: {payload_bytes / 1e6:.1f} MB in {len(list(bundle.rglob('*')))} "
              f"entries + config; health window {args.health:g} s; median of {args.rounds}")
        print(f"{'case':<12}{'seconds':>10}{'vs scp -r':>12}{'bytes sent':>14}")
        rows = (("scp -r", baseline, payload_bytes), ("full", full, payload_bytes),
                ("unchanged", unchanged, 0), ("one-file", one_file, statistics.median(sent)))
        for name, seconds, nbytes in rows:
            print(f"{name:<12}{seconds:>10.2f}{seconds / baseline:>11.2f}x{int(nbytes):>14,}")
        print(f"\nratio unchanged/scp = {unchanged / baseline:.2f}, "
              f"one-file/scp = {one_file / baseline:.2f}")
        return 0
    finally:
        board.destroy()


if __name__ == "__main__":
    raise SystemExit(main())
