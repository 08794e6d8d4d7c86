"""The emulated board's start and round-trip times, side by side, as ratios.

  cold       from nothing: empty cache (mmdebstrap + customize + stand-ins), then start
             (only with --cold: minutes, downloads from Debian's archive)
  warm       layers cached: start the board until sshd answers (median of --repeat)
  ssh        `ssh mind@127.0.0.1 -p PORT true` with the client key (median)
  run        the same `true` inside the board without SSH (nsenter), the baseline
             for what SSH itself costs on top of qemu

    .venv/bin/python bench/emulated_board.py [--repeat 5] [--cold]
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

from elkbuild.emulated_board import EmulatedBoard, free_port  # noqa: E402
from elkbuild.executor import LocalExecutor  # noqa: E402


def timed(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="also build from an empty cache")
    args = parser.parse_args()
    cache = Path(os.environ.get("ELKBUILD_CACHE", "~/.cache/elkbuild")).expanduser()
    rows: list[tuple[str, float]] = []

    if args.cold:
        with tempfile.TemporaryDirectory(prefix="elkbuild-cold-") as empty:
            board = EmulatedBoard(LocalExecutor(), Path(empty), name="bench-cold",
                                  port=free_port())
            rows.append(("cold (build + start)", timed(lambda: board.up(progress=lambda _: None))))
            board.destroy()

    board = EmulatedBoard(LocalExecutor(), cache, name=f"bench-{os.getpid()}", port=free_port())
    board.up()  # builds what is missing, outside the measurement
    try:
        warm = []
        for _ in range(args.repeat):
            board.down()
            warm.append(timed(board.up))
        rows.append(("warm start", statistics.median(warm)))
        ssh = [timed(lambda: subprocess.run(board.ssh_argv("true"), check=True))
               for _ in range(args.repeat)]
        rows.append(("ssh round trip", statistics.median(ssh)))
        inside = [timed(lambda: board.run(["true"], check=True)) for _ in range(args.repeat)]
        rows.append(("run inside (no ssh)", statistics.median(inside)))
    finally:
        board.destroy()

    baseline = dict(rows)["ssh round trip"]
    print(f"{'measure':<22}{'seconds':>10}{'x ssh round trip':>20}")
    for name, seconds in rows:
        print(f"{name:<22}{seconds:>10.2f}{seconds / baseline:>20.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
