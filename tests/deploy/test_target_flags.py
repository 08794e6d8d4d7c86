"""Board-target and Sushi flags that invoke cannot check, refused by tasks/targets.py
before any board is touched: one `elkbuild: error:` line, exit 2."""

from __future__ import annotations

import socket

import pytest

from cli_helpers import assert_one_line_error, run_task
from deploy.helpers import sushi_config


@pytest.fixture
def project(tmp_path):
    """One configured board on a closed port: touching it would fail differently."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "elkbuild.yaml").write_text(
        f"boards:\n  only:\n    host: 127.0.0.1\n    port: {port}\n"
        f"    known_hosts: {tmp_path / 'known_hosts'}\n")
    sushi_config(tmp_path / "rig.json", "Gain")
    return tmp_path


@pytest.mark.parametrize("argv", [
    ["deploy", "--host"],
    ["deploy", "--host", "--config", "RIG"],
    ["deploy", "--host="],
    ["deploy", "--board", "--config", "RIG"],
    ["status", "--host"],
])
def test_a_target_flag_without_value_never_means_the_configured_board(project, argv):
    argv = [str(project / "rig.json") if word == "RIG" else word for word in argv]
    flag = "--board" if "--board" in argv else "--host"
    line = assert_one_line_error(run_task(*argv, project=project), f"{flag} needs a value",
                                 code=2)
    assert "cannot reach" not in line


def test_os_version_is_checked_when_host_matches_a_configured_board(project):
    assert_one_line_error(
        run_task("deploy", "--host", "127.0.0.1", "--os-version", "banana", "--config",
                 str(project / "rig.json"), project=project),
        "--os-version 'banana'", code=2)


@pytest.mark.parametrize("value", ["abc", "-1", "nan"])
def test_health_seconds_must_be_a_number(project, value):
    assert_one_line_error(
        run_task("deploy", "--config", str(project / "rig.json"), "--health-seconds", value,
                 project=project),
        "--health-seconds", code=2)
