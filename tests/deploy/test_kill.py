"""Deploys killed at random points (SIGKILL and SIGINT, the upload included) never
leave the board half-done: after each, the current release matches its manifest by
SHA-256, Sushi runs its config, no live lock remains once the abort bound has
passed, and the next deploy succeeds. A SIGINT ends the deploy with exit 130
within the abort bound."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from elkbuild.deploy.release import ABORT_SECONDS
from elkbuild.sushi.service import settings_for

from cli_helpers import REPO
from deploy.helpers import board_profile, board_sh, cli_env, lock_freed_within, make_bundle, \
    project_file, staging_exists, sushi_config, verify_current_release

SEED = int(os.environ.get("ELKBUILD_TEST_SEED", "20261202"))
KILLS = 30
MODEL_BYTES = 3_000_000
SIGINT_EXIT_BOUND = ABORT_SECONDS + 3.0
"""Ctrl-C to exit: the step in progress notices within a block or a poll, then the
abort script, bounded by ABORT_SECONDS."""
LOCK_FREE_BOUND = 30.0
"""A finaliser that outlives a killed client finishes its health window first."""


@pytest.fixture
def elk(fresh_emulated_board):
    return fresh_emulated_board


def _wait_until_connected(proc: subprocess.Popen) -> None:
    """Until the deploy has a socket open (its SSH connection): a signal before that
    lands in the interpreter's start-up, which touches no board."""
    while proc.poll() is None:
        try:
            fds = os.listdir(f"/proc/{proc.pid}/fd")
            if any(os.readlink(f"/proc/{proc.pid}/fd/{fd}").startswith("socket:") for fd in fds):
                return
        except OSError:
            pass
        time.sleep(0.01)


def _sushi_runs(elk, pid_file: str, config: str) -> bool:
    out = board_sh(elk, 'read -r p <"$1" 2>/dev/null && tr "\\0" " " <"/proc/$p/cmdline" '
                        '2>/dev/null; true', pid_file)
    return f"config_files/{config}" in out


@pytest.mark.slow
def test_deploys_killed_at_random_points_leave_a_whole_board(elk, tmp_path):
    project = project_file(elk, tmp_path, keep_releases=3)
    board = board_profile(elk, tmp_path)
    rng = random.Random(SEED)
    bundle = make_bundle(tmp_path, "Gain")
    config = sushi_config(tmp_path / "rig.json", "Gain")
    models = []
    for name in ("a", "b"):  # two payloads, alternating; big enough that uploads take time
        path = tmp_path / name / "net.bin"
        path.parent.mkdir()
        path.write_bytes(random.Random(f"{SEED}-{name}").randbytes(MODEL_BYTES))
        models.append(path)
    env = cli_env(project, tmp_path)
    pid_file = settings_for(board).pid_file

    def argv(model) -> list[str]:
        return [sys.executable, "-m", "elkbuild.program", "--search-root", str(REPO), "deploy",
                "--board", "emu", "--plugin", str(bundle), "--model", str(model), "--config",
                str(config), "--health-seconds", "0.5", "--json", "--no-progress"]

    def deploy_ok(model) -> None:
        done = subprocess.run(argv(model), env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    started = time.monotonic()
    probe = subprocess.run(argv(models[0])[:6] + ["--health-seconds", "abc"], env=env,
                           capture_output=True, text=True, timeout=60)
    startup = time.monotonic() - started  # interpreter, tasks and configuration
    assert probe.returncode == 2
    began = time.monotonic()
    deploy_ok(models[1])
    full = time.monotonic() - began
    counts = {"SIGKILL": 0, "SIGINT": 0, "finished": 0, "mid-upload": 0, "exit-130": 0}
    slowest_sigint = 0.0
    attempt = 0
    while counts["SIGKILL"] + counts["SIGINT"] < KILLS and attempt < KILLS + 15:
        model = models[attempt % 2]
        attempt += 1
        how = rng.choice((signal.SIGKILL, signal.SIGINT))
        in_upload = rng.random() < 0.4  # else anywhere from the connection to the end
        delay = rng.uniform(0, 0.3) if in_upload else rng.uniform(0, full - startup)
        proc = subprocess.Popen(argv(model), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        _wait_until_connected(proc)
        if in_upload:
            while proc.poll() is None and not staging_exists(elk):
                time.sleep(0.01)
        time.sleep(delay)
        uploading = staging_exists(elk)
        if proc.poll() is not None:
            counts["finished"] += 1
            proc.communicate()
            assert proc.returncode == 0
        else:
            proc.send_signal(how)
            sent = time.monotonic()
            out, err = proc.communicate(timeout=60)
            took = time.monotonic() - sent
            counts[how.name] += 1
            counts["mid-upload"] += uploading
            if how == signal.SIGINT:
                # a Ctrl-C after the result was printed ends the interpreter itself
                finished = '"ok": true' in out
                assert proc.returncode in (0, 130) or finished, (proc.returncode, err)
                counts["exit-130"] += proc.returncode == 130
                assert "Traceback" not in err, err
                assert took <= SIGINT_EXIT_BOUND, took
                slowest_sigint = max(slowest_sigint, took)
        assert lock_freed_within(elk, LOCK_FREE_BOUND), f"lock still live after attempt {attempt}"
        assert verify_current_release(elk) is not None
        assert _sushi_runs(elk, pid_file, config.name), f"Sushi not on its config ({attempt})"
        deploy_ok(model)  # the next deploy succeeds (and completes this payload)
        assert verify_current_release(elk) is not None
    assert counts["SIGKILL"] + counts["SIGINT"] >= KILLS, counts
    assert counts["SIGKILL"] >= 8 and counts["SIGINT"] >= 8 and counts["mid-upload"] >= 8, counts
    assert counts["exit-130"] >= counts["SIGINT"] // 2, counts
    print(f"kill test: {counts}, slowest SIGINT exit {slowest_sigint:.1f} s, "
          f"full deploy {full:.1f} s, {time.monotonic() - started:.0f} s in all")
