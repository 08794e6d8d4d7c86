"""The emulated board as a named target: `--board emulated:NAME` (or an instance's
bare NAME) works for every board task with elkbuild's own keys, no --trust-host-key
and no password."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cli_helpers import assert_one_line_error, run_task
from deploy.helpers import make_bundle, sushi_config, verify_current_release

HEALTH = "1.0"


@pytest.fixture
def elk(fresh_emulated_board):
    return fresh_emulated_board


def _env(elk) -> dict[str, str]:
    # a project with no board configured, and the board's own cache: nothing else to go on
    return {"ELKBUILD_CACHE": str(elk.cache_dir), "HOME": os.environ.get("HOME", "/root")}


def test_every_board_task_reaches_the_emulated_board_by_name(elk, tmp_path):
    project = tmp_path
    (project / "elkbuild.yaml").write_text("project: {name: t}\n")
    name = f"emulated:{elk.name}"
    src = tmp_path / "src"
    src.mkdir()
    bundle = make_bundle(src, "Gain", size=20_000)
    config = sushi_config(src / "rig.json", "Gain")

    def task(*args: str):
        return run_task(*args, project=project, env=_env(elk))

    try:
        first = task("deploy", "--board", name, "--plugin", str(bundle), "--config", str(config),
                     "--health-seconds", HEALTH, "--json")
        assert first.returncode == 0, first.stderr
        (result,) = json.loads(first.stdout.splitlines()[-1])["boards"]
        assert result["ok"] and result["host"] == name
        assert result["abi_gate"] == f"ABI gate elk-{elk.os_version} passed (Gain.vst3)"
        assert verify_current_release(elk) == result["release"]
        # the instance's bare name means the same board
        status = task("status", "--board", elk.name, "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["running"]
        logs = task("logs", "--board", name, "--lines", "5")
        assert logs.returncode == 0, logs.stderr
        restarted = task("restart", "--board", name, "--health-seconds", HEALTH, "--json")
        assert restarted.returncode == 0, restarted.stderr
        monitor = task("monitor", "--board", name, "--duration", "1", "--json")
        assert monitor.returncode == 0, monitor.stderr
        assert any("threads" in line for line in monitor.stdout.splitlines())
        model = bundle / "Contents" / "Resources" / "model.onnx"
        model.write_bytes(b"retrained" * 100)
        second = task("deploy", "--board", name, "--plugin", str(bundle), "--config", str(config),
                      "--health-seconds", HEALTH, "--json")
        assert second.returncode == 0, second.stderr
        back = task("rollback", "--board", name, "--health-seconds", HEALTH, "--json")
        assert back.returncode == 0, back.stderr
        assert json.loads(back.stdout)["boards"][0]["release"] == result["release"]
        stopped = task("stop", "--board", name, "--json")
        assert stopped.returncode == 0, stopped.stderr
        # the os_version is the instance's: another one given is refused before connecting
        assert_one_line_error(task("status", "--board", name, "--os-version",
                                   "0.11" if elk.os_version == "1.x" else "1.x"),
                              f"the emulated board {elk.name!r} has", code=2)
    finally:
        run_task("stop", "--board", name, project=project, env=_env(elk))


def test_an_emulated_board_that_is_not_running_says_how_to_start_it(elk, tmp_path):
    (tmp_path / "elkbuild.yaml").write_text("project: {name: t}\n")
    stopped = f"{elk.name}-absent"
    line = assert_one_line_error(run_task("status", "--board", f"emulated:{stopped}",
                                          project=tmp_path, env=_env(elk)),
                                 f"the emulated board {stopped!r} is not running",
                                 f"invoke board-up --name {stopped}", "invoke demo")
    assert "cannot reach" not in line
    assert not (Path(elk.cache_dir) / "board" / "instances" / stopped).exists()


def test_the_board_named_emulated_is_the_default_instance(tmp_path):
    """In a cache with no board at all, `--board emulated` means the instance
    `board-up` (and the demo) start by default, and says how to start it."""
    (tmp_path / "elkbuild.yaml").write_text("project: {name: t}\n")
    env = {"ELKBUILD_CACHE": str(tmp_path / "cache")}
    for task in (("deploy", "--board", "emulated", "--rig", "neural-mono"),
                 ("monitor", "--board", "emulated", "--duration", "1")):
        assert_one_line_error(run_task(*task, project=tmp_path, env=env),
                              "board 'emulated': the emulated board 'default' is not running",
                              "start it with `invoke board-up` (or `invoke demo`)")
    assert not (tmp_path / "cache" / "board").exists()  # looking started nothing
