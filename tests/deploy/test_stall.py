"""A board that freezes mid-deploy (its SSH processes stopped from the host, the
link up) fails the deploy within the configured bound, saying how long it saw
nothing and whose fault it is; once resumed, the board is consistent and the next
deploy succeeds. A board frozen before the connection is a bounded error too."""

from __future__ import annotations

import random
import subprocess
import sys
import time

import pytest

from board_fixtures import frozen
from cli_helpers import REPO, assert_one_line_error
from deploy.helpers import cli_env, known_hosts_for, lock_freed_within, make_bundle, \
    staging_exists, sushi_config, verify_current_release

IO_TIMEOUT = 3


@pytest.fixture
def elk(fresh_emulated_board):
    return fresh_emulated_board


@pytest.fixture
def cli(elk, tmp_path):
    known = known_hosts_for(elk, tmp_path)
    (tmp_path / "elkbuild.yaml").write_text(
        "boards:\n  emu:\n"
        f"    host: {elk.host}\n    port: {int(elk.port)}\n    known_hosts: {known}\n"
        f"    identity_file: {elk.client_key}\n    keep_releases: 3\n"
        f"    connect_timeout: {IO_TIMEOUT}\n    command_timeout: 20\n"
        f"    io_timeout: {IO_TIMEOUT}\n    keepalive: 1\n")
    bundle = make_bundle(tmp_path, "Gain")
    config = sushi_config(tmp_path / "rig.json", "Gain")
    model = tmp_path / "net.bin"
    env = cli_env(tmp_path, tmp_path)

    def argv() -> list[str]:
        return [sys.executable, "-m", "elkbuild.program", "--search-root", str(REPO), "deploy",
                "--board", "emu", "--plugin", str(bundle), "--model", str(model), "--config",
                str(config), "--health-seconds", "0.5", "--no-progress"]

    def start(seed: int, size: int) -> subprocess.Popen:
        model.write_bytes(random.Random(seed).randbytes(size))
        return subprocess.Popen(argv(), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    return start


def _wait_for_upload(elk, proc, bound: float = 60) -> None:
    deadline = time.monotonic() + bound
    while not staging_exists(elk):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the upload never started"
        time.sleep(0.05)


def test_a_board_frozen_mid_upload_fails_the_deploy_within_the_bound(elk, cli):
    first = cli(1, 100_000)
    assert first.wait(timeout=120) == 0, first.communicate()
    proc = cli(2, 40_000_000)  # long enough an upload to freeze the board during it
    _wait_for_upload(elk, proc)
    with frozen(elk):
        frozen_at = time.monotonic()
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - frozen_at
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert_one_line_error(result, "stopped answering during the upload",
                          f"nothing for {IO_TIMEOUT} s", "network or board")
    assert took < IO_TIMEOUT + 4, took
    # resumed: the lock died with the session, the board is on its last release
    assert lock_freed_within(elk, 20), "lock still held after the board resumed"
    assert verify_current_release(elk) is not None
    again = cli(3, 100_000)
    assert again.wait(timeout=120) == 0, again.communicate()
    assert verify_current_release(elk) is not None


def test_deploying_to_a_board_frozen_before_connecting_is_a_bounded_error(elk, cli):
    with frozen(elk, with_listener=True):
        proc = cli(4, 1000)
        started = time.monotonic()
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - started
    assert_one_line_error(subprocess.CompletedProcess(proc.args, proc.returncode, out, err),
                          "network or board", f"{IO_TIMEOUT} s")
    assert took < IO_TIMEOUT + 8, took  # the interpreter's start-up included


def test_a_link_cut_mid_upload_says_whose_fault_it_is(elk, tmp_path):
    import dataclasses
    import threading

    from elkbuild.board.host_keys import known_hosts_name
    from elkbuild.deploy import deployer, payload as dep
    from elkbuild.errors import BoardUnresponsive
    from elkbuild.sushi.service import settings_for

    from deploy.helpers import board_profile
    from deploy.test_deploy import CuttableProxy

    proxy = CuttableProxy(int(elk.port))
    try:
        key_type, key = elk.host_key_line.split()[-2:]
        known = tmp_path / "known_hosts"
        known.write_text(f"{known_hosts_name('127.0.0.1', proxy.port)} {key_type} {key}\n")
        board = dataclasses.replace(board_profile(elk, tmp_path, known_hosts=known),
                                    port=proxy.port)
        model = tmp_path / "net.bin"
        model.write_bytes(random.Random(5).randbytes(40_000_000))
        payload = dep.collect_payload([make_bundle(tmp_path, "Gain")], models=[model])

        def cut_when_uploading() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not staging_exists(elk):
                time.sleep(0.05)
            proxy.cut()

        threading.Thread(target=cut_when_uploading, daemon=True).start()
        with pytest.raises(BoardUnresponsive) as lost:
            deployer.deploy_to_board(board, payload, settings_for(board, health_seconds=0.5))
        line = lost.value.one_line()
        assert "lost during the upload" in line and "network or board" in line, line
        for misleading in ("unknown", "refused our", "writable by", "/proc/"):
            assert misleading not in line
    finally:
        proxy.close()
