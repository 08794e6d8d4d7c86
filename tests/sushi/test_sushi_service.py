"""Sushi on the board: start/stop/restart/status/logs, and the flags passed through."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from elkbuild.config import Board
from elkbuild.errors import UsageError
from elkbuild.sushi.service import log_command, parse_fields, plugins_in_config, settings_for

from cli_helpers import REPO, assert_one_line_error, run_task
from deploy.helpers import board_sh, make_bundle, project_file, sushi_config


@pytest.fixture
def elk(fresh_emulated_board):
    """The emulated Elk board (real arm64 sshd under qemu), reset before each test."""
    return fresh_emulated_board


# --------------------------------------------------------------------------- pure logic

def test_flags_follow_the_board_and_the_command_line():
    board_1x = Board(name="b", host="h")
    settings = settings_for(board_1x, multicore=2, timing_statistics=True)
    assert settings.flags == ["-r", "--multicore-processing=2", "--timing-statistics",
                              "--base-plugin-path=/home/mind/plugins"]
    old = settings_for(Board(name="o", host="h", os_version="0.11"))
    assert old.flags == ["-r"] and old.library_path == "/usr/xenomai/lib"
    with pytest.raises(UsageError):
        settings_for(board_1x, multicore=0)
    with pytest.raises(UsageError):
        settings_for(board_1x, mode="docker")


def test_plugins_in_config_finds_vst3_bundles_only():
    doc = {"tracks": [{"plugins": [
        {"path": "Gain.vst3", "type": "vst3x"},
        {"path": "/usr/lib/lxvst/mda-vst3.vst3", "type": "vst3x"},
        {"uid": "sushi.testing.gain", "type": "internal"},
        {"path": "x.so", "type": "vst2x"}]}],
        "pre_track": {"plugins": [{"path": "a;touch pwned.vst3", "type": "vst3x"}]}}
    assert plugins_in_config(json.dumps(doc)) == ["Gain.vst3", "a;touch pwned.vst3",
                                                  "mda-vst3.vst3"]
    assert plugins_in_config("{broken") == []


def test_logs_use_the_journal_for_the_service_and_files_otherwise():
    settings = settings_for(Board(name="b", host="h"))
    assert log_command(settings, "service", 20, True) == \
        ["journalctl", "-u", "sushi", "-n", "20", "--no-pager", "-f"]
    assert log_command(settings, "process", 5, False) == \
        ["tail", "-n", "5", "/tmp/sushi.log", "/tmp/elkbuild-sushi.out"]


def test_parse_fields_reads_key_value_lines():
    assert parse_fields("a=1\nnoise line\nreason=x = y\na=2\n") == {"a": "2", "reason": "x = y"}


# --------------------------------------------------------------------------- on the board

def _deploy(project, tree):
    done = run_task("deploy", "--board", "emu", "--plugin", str(tree["gain"]), "--config",
                    str(tree["config"]), "--health-seconds", "1", "--json", project=project)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    return {"gain": make_bundle(src, "Gain"),
            "config": sushi_config(src / "rig.json", "Gain")}


def test_start_stop_restart_status_with_flags(elk, tmp_path, tree):
    project = project_file(elk, tmp_path)
    nothing = run_task("start", "--board", "emu", project=project)
    assert_one_line_error(nothing, "Sushi did not start", "no Sushi config")
    _deploy(project, tree)
    try:
        status = json.loads(run_task("status", "--board", "emu", "--json",
                                     project=project).stdout)
        assert status["running"] and status["mode"] == "process"
        first_pid = status["pid"]
        again = json.loads(run_task("start", "--board", "emu", "--json", project=project).stdout)
        assert again["already_running"] and again["pid"] == first_pid

        restarted = run_task("restart", "--board", "emu", "--multicore-processing", "2",
                             "--timing-statistics", "--health-seconds", "1", "--json",
                             project=project)
        assert restarted.returncode == 0, restarted.stderr
        status = json.loads(run_task("status", "--board", "emu", "--json",
                                     project=project).stdout)
        assert status["running"] and status["pid"] != first_pid
        words = status["cmdline"].split()
        for flag in ("-r", "--multicore-processing=2", "--timing-statistics",
                     "--base-plugin-path=/home/mind/plugins", "-c",
                     "/home/mind/config_files/rig.json"):
            assert flag in words, (flag, words)

        logs = run_task("logs", "--board", "emu", "--lines", "50", project=project)
        assert logs.returncode == 0, logs.stderr
        assert "Gain" in logs.stdout

        stopped = json.loads(run_task("stop", "--board", "emu", "--json",
                                      project=project).stdout)
        assert stopped["stopped_pid"] == status["pid"]
        alive = board_sh(elk, '[ -d "/proc/$1" ] && echo alive || echo gone', str(status["pid"]))
        assert alive.strip() == "gone"
        status = json.loads(run_task("status", "--board", "emu", "--json",
                                     project=project).stdout)
        assert not status["running"]
    finally:
        run_task("stop", "--board", "emu", project=project)


def test_logs_follow_streams_until_interrupted(elk, tmp_path, tree):
    project = project_file(elk, tmp_path)
    _deploy(project, tree)
    env = {"ELKBUILD_PROJECT_DIR": str(project),
           "ELKBUILD_USER_CONFIG": str(project / "none.yaml")}
    import os

    follower = subprocess.Popen(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO), "logs", "--board", "emu",
         "--follow", "--lines", "5"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("ELKBUILD_")}, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = follower.stdout.readline()
        assert first.strip(), follower.stderr.read() if follower.poll() is not None else ""
        marker = f"followed-{time.time_ns()}"
        board_sh(elk, 'echo "$1" >>/tmp/sushi.log', marker)
        deadline = time.monotonic() + 60
        seen = False
        while time.monotonic() < deadline and not seen:
            seen = marker in follower.stdout.readline()
        assert seen
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait(timeout=30)
        run_task("stop", "--board", "emu", project=project)
    # the remote `tail -F` ended with its reader
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        tails = board_sh(elk, 'for p in /proc/[0-9]*; do read -r c <"$p/comm" 2>/dev/null; '
                              '[ "$c" = tail ] && echo "$p"; done; true').split()
        if not tails:
            break
        time.sleep(0.5)
    assert tails == []
