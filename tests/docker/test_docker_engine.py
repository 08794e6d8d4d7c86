"""elkbuild's private Docker engine leaves nothing mounted behind when stopped."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import require_real_part

from elkbuild.docker.engine import mounts_under


def test_mounts_under_lists_real_mounts_below_a_folder_only(tmp_path: Path):
    require_real_part(os.geteuid() == 0, "root (to mount a tmpfs)", "run the tests as root")
    engine = tmp_path / "engine"
    point = engine / "exec" / "netns" / "default"
    point.mkdir(parents=True)
    (tmp_path / "engine-other").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "none", str(point)], check=True)
    try:
        assert mounts_under(engine) == [point]
        assert mounts_under(tmp_path / "engine-other") == []
    finally:
        subprocess.run(["umount", str(point)], check=True)
    assert mounts_under(engine) == []


def test_an_engine_that_does_not_answer_is_none(tmp_path: Path):
    from elkbuild.docker.api import DockerApi
    from elkbuild.executor import LocalExecutor

    assert DockerApi.connect(f"unix://{tmp_path / 'no-engine.sock'}", LocalExecutor()) is None
