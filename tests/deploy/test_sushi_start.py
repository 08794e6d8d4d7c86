"""`start --config X` while Sushi runs another config is refused, not ignored."""

from __future__ import annotations

import pytest

from elkbuild.board.connection import connect
from elkbuild.deploy import deployer, payload as dep
from elkbuild.sushi import service
from elkbuild.sushi.service import settings_for

from cli_helpers import assert_one_line_error, run_task
from deploy.helpers import board_profile, make_bundle, project_file, sushi_config


@pytest.fixture
def elk(fresh_emulated_board):
    return fresh_emulated_board


def test_start_with_a_config_while_sushi_runs_is_refused(elk, tmp_path):
    board = board_profile(elk, tmp_path)
    bundle = make_bundle(tmp_path, "Gain")
    config = sushi_config(tmp_path / "rig.json", "Gain")
    payload = dep.collect_payload([bundle], (config.name, config.read_bytes(), str(config)))
    assert deployer.deploy_to_board(board, payload, settings_for(board, health_seconds=0.5)).ok
    try:
        (tmp_path / "project").mkdir()
        project = project_file(elk, tmp_path / "project")
        line = assert_one_line_error(run_task("start", "--config", "other.json", project=project),
                                     "Sushi already runs", "other.json", "restart --config",
                                     code=2)
        assert "Traceback" not in line
        plain = run_task("start", project=project)  # without a config: already running is fine
        assert plain.returncode == 0, plain.stderr
    finally:
        with connect(board) as conn:
            service.stop(conn, settings_for(board))
