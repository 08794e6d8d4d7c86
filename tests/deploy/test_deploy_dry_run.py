"""`invoke deploy --dry-run` against the emulated board: it says what it would
send and run, and changes nothing, neither on the board nor here."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from cli_helpers import run_task
from deploy.helpers import board_sh, board_tree, make_bundle, project_file, sushi_config, \
    verify_current_release

HEALTH = "1.0"


@pytest.fixture
def elk(fresh_emulated_board):
    return fresh_emulated_board


def _local_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _deploy(project: Path, bundle: Path, config: Path, *extra: str):
    return run_task("deploy", "--board", "emu", "--plugin", str(bundle), "--config", str(config),
                    "--health-seconds", HEALTH, "--json", *extra, project=project)


def test_dry_run_lists_transfers_and_changes_nothing(elk, tmp_path):
    project = project_file(elk, tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    bundle = make_bundle(src, "Gain", size=40_000)
    config = sushi_config(src / "rig.json", "Gain")
    try:
        # an empty board: everything would travel
        before_board = board_tree(elk)
        before_local = _local_tree(tmp_path)
        empty = _deploy(project, bundle, config, "--dry-run")
        assert empty.returncode == 0, empty.stderr
        result = json.loads(empty.stdout.splitlines()[-1])
        assert result["ok"] and result["boards"][0]["files_sent"] == 3
        assert "would send" in empty.stderr and "Gain.so" in empty.stderr
        assert "would run remote script deploy/finalize.sh" in empty.stderr
        assert board_tree(elk) == before_board
        assert _local_tree(tmp_path) == before_local

        # a board with a release: only the changed file would travel
        first = _deploy(project, bundle, config)
        assert first.returncode == 0, first.stderr
        release = verify_current_release(elk)
        model = bundle / "Contents" / "Resources" / "model.onnx"
        model.write_bytes(b"retrained " * 500)
        before_board = board_tree(elk)
        before_local = _local_tree(tmp_path)
        pid = board_sh(elk, "cat /tmp/elkbuild-sushi.pid").strip()
        dry = _deploy(project, bundle, config, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        planned = json.loads(dry.stdout.splitlines()[-1])["boards"][0]
        assert (planned["files_sent"], planned["files_linked"]) == (1, 2)
        assert planned["bytes_sent"] == model.stat().st_size
        sends = [line for line in dry.stderr.splitlines() if "would send" in line]
        assert len(sends) == 1 and "model.onnx" in sends[0], dry.stderr
        assert sum("would write" in line for line in dry.stderr.splitlines()) == 4
        assert board_tree(elk) == before_board
        assert verify_current_release(elk) == release
        assert board_sh(elk, "cat /tmp/elkbuild-sushi.pid").strip() == pid  # not restarted
        assert _local_tree(tmp_path) == before_local
    finally:
        run_task("stop", "--board", "emu", project=project)
