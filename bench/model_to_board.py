"""Model change to the new model running on the emulated board, through the command
line, as a ratio to the same loop with nothing changed and to the 10 s goal.

    .venv/bin/python bench/model_to_board.py [--rounds 3]

The loop after `./elk demo`, as the README gives it, on a project of its own (the
example plugin and rig, kept in the cache so that only its first run builds from
nothing) and an emulated board of its own:
  changed    the model file edited (its doc string: the bytes change, the maths does
             not), then `./elk build --plugin NeuralSaturator` and `./elk deploy --board
             emulated:NAME --plugin NeuralSaturator --rig neural-mono`, timed from the
             edit until deploy returns with Sushi healthy on the new release (default
             health window, 3 s) and the board's manifest holding the new model
  unchanged  the same two commands with nothing changed: the loop's fixed cost
Each is the median of --rounds; the build and deploy parts are printed too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from cli_helpers import run_task  # noqa: E402

from elkbuild.emulated_board import EmulatedBoard, free_port  # noqa: E402
from elkbuild.executor import LocalExecutor  # noqa: E402

PLUGIN = "NeuralSaturator"
RIG = "neural-mono"
GOAL_SECONDS = 10.0
MODEL_IN_BUNDLE = f"plugins/{PLUGIN}.vst3/Contents/Resources/saturator.onnx"


def project_in(cache: Path) -> Path:
    """The bench's project: this checkout's example plugin and rig (refreshed, its
    build folder kept)."""
    root = cache / "bench" / "model-to-board"
    shutil.rmtree(root / "plugins", ignore_errors=True)
    shutil.copytree(REPO / "plugins" / PLUGIN, root / "plugins" / PLUGIN)
    (root / "sushi-configs").mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "sushi-configs" / f"{RIG}.yaml", root / "sushi-configs")
    return root


def edit_model(model: Path, tag: str) -> str:
    """A new model file that computes the same: only its doc string changes."""
    import onnx

    proto = onnx.load(str(model))
    proto.doc_string = f"retrained {tag}"
    onnx.save(proto, str(model))
    return hashlib.sha256(model.read_bytes()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    cache = Path(os.environ.get("ELKBUILD_CACHE", "~/.cache/elkbuild")).expanduser()
    env = {"ELKBUILD_CACHE": str(cache)}
    project = project_in(cache)
    model = project / "plugins" / PLUGIN / "model" / "saturator.onnx"
    board = EmulatedBoard(LocalExecutor(), cache, name=f"bench-{os.getpid()}", port=free_port())
    target = f"emulated:{board.name}"

    def elk(*argv: str) -> float:
        started = time.perf_counter()
        done = run_task(*argv, project=project, env=env, timeout=3600)
        if done.returncode != 0:
            raise SystemExit(f"`./elk {' '.join(argv)}` failed: {done.stderr[-2000:]}")
        return time.perf_counter() - started

    def loop() -> tuple[float, float]:
        build = elk("build", "--plugin", PLUGIN)
        deploy = elk("deploy", "--board", target, "--plugin", PLUGIN, "--rig", RIG,
                     "--no-progress")
        return build, deploy

    def board_model() -> str:
        manifest = json.loads(board.path("/udata/elkbuild/current/manifest.json").read_text())
        return manifest["files"][MODEL_IN_BUNDLE]["sha256"]

    print(f"starting an emulated board on port {board.port} ...", flush=True)
    board.up()
    try:
        print("first build and deploy (from nothing the first time: minutes) ...", flush=True)
        loop()
        unchanged = [loop() for _ in range(args.rounds)]
        changed = []
        for index in range(args.rounds):
            digest = edit_model(model, f"{os.getpid()}-{index}")
            changed.append(loop())
            if board_model() != digest:
                raise SystemExit("the board does not run the changed model")
        rows = [(name, [b + d for b, d in parts], [b for b, _ in parts], [d for _, d in parts])
                for name, parts in (("unchanged", unchanged), ("changed", changed))]
        base = statistics.median(rows[0][1])
        print(f"\nmedian of {args.rounds}; goal: changed model running within {GOAL_SECONDS:g} s")
        print(f"{'loop':<11}{'total s':>9}{'build s':>9}{'deploy s':>10}"
              f"{'vs unchanged':>14}{'vs goal':>9}")
        for name, total, build, deploy in rows:
            seconds = statistics.median(total)
            print(f"{name:<11}{seconds:>9.2f}{statistics.median(build):>9.2f}"
                  f"{statistics.median(deploy):>10.2f}{seconds / base:>13.2f}x"
                  f"{seconds / GOAL_SECONDS:>8.2f}x")
        seconds = statistics.median(rows[1][1])
        print(f"\nratio changed/goal = {seconds / GOAL_SECONDS:.2f} "
              f"({'within' if seconds <= GOAL_SECONDS else 'over'} the goal)")
        return 0
    finally:
        board.destroy()


if __name__ == "__main__":
    raise SystemExit(main())
