"""A board that freezes while it is monitored (its processes stopped from the host,
the link up) ends the run within the stall bound with an error saying how long
nothing came, never a clean "no mode switches"; resumed, it can be monitored again."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from board_fixtures import frozen
from cli_helpers import REPO, assert_one_line_error
from deploy.helpers import cli_env, known_hosts_for

STALL = 2


def _monitor(elk, tmp_path, *extra: str) -> subprocess.Popen:
    known = known_hosts_for(elk, tmp_path)
    (tmp_path / "elkbuild.yaml").write_text(
        "boards:\n  emu:\n"
        f"    host: {elk.host}\n    port: {int(elk.port)}\n    known_hosts: {known}\n"
        f"    identity_file: {elk.client_key}\n    os_version: '{elk.os_version}'\n")
    argv = [sys.executable, "-m", "elkbuild.program", "--search-root", str(REPO), "monitor",
            "--board", "emu", "--interval", "0.2", "--stall", str(STALL), "--json", *extra]
    return subprocess.Popen(argv, env=cli_env(tmp_path, tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_board_frozen_mid_monitor_fails_within_the_stall_bound(fresh_emulated_board, tmp_path):
    elk = fresh_emulated_board
    proc = _monitor(elk, tmp_path, "--duration", "120")
    first = json.loads(proc.stdout.readline())  # a snapshot came: the loop runs
    assert "threads" in first or first, first
    with frozen(elk):
        frozen_at = time.monotonic()
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - frozen_at
    result = subprocess.CompletedProcess(proc.args, proc.returncode, "", err)
    assert_one_line_error(result, "no snapshot for 2 s", "stopped answering")
    assert took < STALL + 3, took
    again = _monitor(elk, tmp_path, "--duration", "1")
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert [json.loads(line) for line in out.splitlines()], "a resumed board is monitored again"
