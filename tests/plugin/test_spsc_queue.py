"""The runtime's lock-free queue, as the classifier template uses it, compiled and run with real threads."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from conftest import require_real_part

HERE = Path(__file__).resolve().parent
RUNTIME_INCLUDE = HERE.parents[1] / "runtime" / "include"


def test_spsc_queue_hands_over_every_item_in_order(tmp_path: Path):
    require_real_part(shutil.which("g++") is not None, "a host C++ compiler", "apt-get install g++")
    program = tmp_path / "spsc_queue_check"
    built = subprocess.run(["g++", "-std=c++17", "-O2", "-Wall", "-Werror", "-pthread",
                            f"-I{RUNTIME_INCLUDE}", str(HERE / "spsc_queue_check.cpp"),
                            "-o", str(program)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    ran = subprocess.run([str(program)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.startswith("2000000 items in order")
