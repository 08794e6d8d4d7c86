"""Every network wait has a bound: a board whose processes are frozen (SIGSTOP, its
link still up) gives one clear error within the configured time, saying whose fault
it is; a malformed known_hosts line is skipped as OpenSSH does."""

from __future__ import annotations

import dataclasses
import time

import pytest

from elkbuild.board.connection import connect
from elkbuild.errors import BoardUnresponsive, CommandTooLong

from board_fixtures import frozen
from deploy.helpers import board_profile, known_hosts_for

BOUND = 3


@pytest.fixture
def elk(fresh_emulated_board):
    return fresh_emulated_board


def _quick(board):
    return dataclasses.replace(board, connect_timeout=BOUND, command_timeout=BOUND,
                               io_timeout=BOUND, keepalive=1)


def test_a_malformed_known_hosts_line_is_skipped_with_a_warning(elk, tmp_path, capsys):
    good = known_hosts_for(elk, tmp_path).read_text()
    known = tmp_path / "known_hosts"
    known.write_text("broken.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI-not-base64\n"
                     "half-a-line\n" + good)
    with connect(board_profile(elk, tmp_path, known_hosts=known)) as conn:
        assert conn.executor.run(["echo", "ok"]).stdout.strip() == "ok"
    err = capsys.readouterr().err
    assert "warning" in err and "skipped malformed line(s) 1, 2" in err


def test_connecting_to_a_frozen_board_ends_within_the_bound(elk, tmp_path):
    board = _quick(board_profile(elk, tmp_path))
    with frozen(elk, with_listener=True):
        started = time.monotonic()
        with pytest.raises(BoardUnresponsive) as stalled:
            connect(board)
        took = time.monotonic() - started
    assert took < BOUND + 3, took
    line = stalled.value.one_line()
    assert "network or board" in line and f"{BOUND} s" in line, line


def test_a_command_on_a_board_frozen_after_connecting_ends_within_the_bound(elk, tmp_path):
    board = _quick(board_profile(elk, tmp_path))
    with connect(board) as conn:
        conn.executor.run(["true"])
        with frozen(elk):
            started = time.monotonic()
            with pytest.raises(BoardUnresponsive) as stalled:
                conn.executor.run(["sleep", "0"])
            took = time.monotonic() - started
    assert took < BOUND + 3, took
    line = stalled.value.one_line()
    assert "stopped answering" in line and "nothing for" in line and "network or board" in line


def test_a_transfer_to_a_frozen_board_ends_within_the_bound(elk, tmp_path):
    board = _quick(board_profile(elk, tmp_path))
    with connect(board) as conn:
        conn.executor.write_bytes("/tmp/elk-stall-probe", b"x")  # SFTP open before the freeze
        with frozen(elk):
            started = time.monotonic()
            with pytest.raises(BoardUnresponsive) as stalled:
                conn.executor.write_bytes("/tmp/elk-stall-probe", b"y" * 4_000_000)
            took = time.monotonic() - started
        assert took < BOUND + 3, took
        assert "network or board" in stalled.value.one_line()
        # the session is usable again once the board is: the stalled SFTP was dropped
        assert conn.executor.run(["echo", "back"]).stdout.strip() == "back"


def test_a_remote_command_has_a_default_bound_that_can_be_overridden(elk, tmp_path):
    board = dataclasses.replace(board_profile(elk, tmp_path), command_timeout=2)
    with connect(board) as conn:
        assert conn.executor.command_timeout == 2
        started = time.monotonic()
        with pytest.raises(CommandTooLong) as slow:
            conn.executor.run(["sleep", "30"])
        assert time.monotonic() - started < 6
        # the board answers: the command is slow, which is not the network's fault
        assert "was still running after 2 s" in slow.value.one_line()
        assert "command_timeout" in slow.value.one_line()
        assert not isinstance(slow.value, BoardUnresponsive)
        assert conn.executor.run(["sleep", "1"], timeout=10).returncode == 0
