"""Tasks: the main job on defaults and the test suite."""

from __future__ import annotations

from elkbuild.cli import elk_task

from tasks.shell import PROJECT_DIR, load


@elk_task(help={"json": "print each step as one JSON object",
                "board_name": "the emulated board instance to use (default: default)",
                "port": "its loopback SSH port (default 2222, then the last one used)",
                "monitor_seconds": "how long to watch the real-time threads (default 3)",
                "rigs_only": "only render and check the example rigs"},
          auto_shortflags=False)
def demo(c, json=False, board_name="default", port=0, monitor_seconds=3.0, rigs_only=False):
    """The main job on defaults: rigs, image, cross-built plugin, emulated board, deploy,
    offline check on the board, monitor."""
    from elkbuild.reporting import emit_json
    from elkbuild.demo import DemoOptions, run_demo
    from elkbuild.executor import LocalExecutor

    def say(step):
        if json:
            emit_json({"step": step.what, "detail": step.detail})
        else:
            print(f"{step.what:>9}  {step.detail}", flush=True)

    options = DemoOptions(board_name=board_name, port=int(port) or None,
                          monitor_seconds=float(monitor_seconds), rigs_only=rigs_only, quiet=json)
    steps = run_demo(load(), say, LocalExecutor(), options)
    if not json:
        print(f"demo: done, {len(steps)} steps")


@elk_task(help={"k": "only tests whose names match this pytest -k expression",
                "fast": "leave out tests marked slow (CI runs them all)"},
          auto_shortflags=False)
def test(c, k="", fast=False):
    """Run the test suite (the real Docker engine and emulated board are started as needed)."""
    import os
    import sys

    argv = [sys.executable, "-m", "pytest", str(PROJECT_DIR / "tests")]
    if k:
        argv += ["-k", k]
    if fast:
        argv += ["-m", "not slow"]
    os.chdir(PROJECT_DIR)
    os.execv(sys.executable, argv)  # pytest's own output and exit code, unchanged
