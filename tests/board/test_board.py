"""SSH to the board: host-key policy, quoting, streams, SFTP, the remote lock.

Everything here runs against the emulated board's real sshd (arm64 OpenSSH under
qemu); only the quoting helpers are checked without it.
"""

from __future__ import annotations

import shlex
import subprocess
import threading
import time
from pathlib import Path

import paramiko
import pytest

from elkbuild.board import lock as board_lock
from elkbuild.board.connection import connect
from elkbuild.board.host_keys import fingerprint, known_hosts_name, record_host_key
from elkbuild.board.remote_scripts import run_script, shell_assign
from elkbuild.board.ssh_executor import SshExecutor, remote_command
from elkbuild.errors import BoardError, HostKeyError
from elkbuild.executor import EXECUTORS

from deploy.helpers import board_profile, board_sh, known_hosts_for, no_pwned_anywhere

HOSTILE = ["a;touch pwned", "$(touch pwned)", "`touch pwned`", "x' ; touch pwned '",
           'q" ; touch pwned "', "--help", "-rf", "new\nline", "* ?"]


@pytest.fixture
def elk(fresh_emulated_board):
    """The emulated Elk board (real arm64 sshd under qemu), reset before each test."""
    return fresh_emulated_board


# --------------------------------------------------------------------------- pure logic

def test_remote_command_quotes_every_word():
    command = remote_command(["printf", "%s\n", *HOSTILE], cwd="/tmp/a b", env={"X": "1;2"})
    assert command.startswith("cd '/tmp/a b' && env 'X=1;2' printf")
    # the shell reads back exactly the words we gave it
    assert shlex.split(command.split(" && ", 1)[1]) == ["env", "X=1;2", "printf", "%s\n",
                                                         *HOSTILE]


def test_ssh_executor_is_registered():
    assert EXECUTORS["ssh"] is SshExecutor


def test_known_hosts_names_follow_openssh():
    assert known_hosts_name("elk-pi.local", 22) == "elk-pi.local"
    assert known_hosts_name("127.0.0.1", 2222) == "[127.0.0.1]:2222"


def test_record_host_key_appends_and_keeps_existing_lines(tmp_path):
    known = tmp_path / "ssh" / "known_hosts"
    known.parent.mkdir()
    known.write_text("other.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExisting")  # no newline
    key = paramiko.Ed25519Key.from_private_key_file(_make_key(tmp_path))
    record_host_key(known, "[h]:2222", key)
    lines = known.read_text().splitlines()
    assert lines[0].startswith("other.example ")
    assert lines[1] == f"[h]:2222 ssh-ed25519 {key.get_base64()}"
    assert oct(known.stat().st_mode & 0o777) == "0o600"
    assert fingerprint(key).startswith("SHA256:") and "=" not in fingerprint(key)


def _make_key(directory: Path) -> str:
    path = directory / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return str(path)


# --------------------------------------------------------------------------- against the board

def test_unknown_host_key_is_refused_then_trusted_explicitly(elk, tmp_path, capsys):
    empty = tmp_path / "known_hosts"
    board = board_profile(elk, tmp_path, known_hosts=empty)
    with pytest.raises(HostKeyError) as refused:
        connect(board)
    message = refused.value.one_line()
    assert "unknown" in message and "SHA256:" in message and "--trust-host-key" in message
    assert not empty.exists()  # nothing recorded without consent

    with connect(board, trust_host_key=True) as conn:
        assert conn.executor.run(["id", "-un"]).stdout.strip() == elk.user
    printed = capsys.readouterr().err  # stdout stays clean for --json
    assert "trusted host key" in printed and "SHA256:" in printed
    recorded = empty.read_text()
    key_words = elk.host_key_line.split()
    assert key_words[-1] in recorded or key_words[-2] in recorded
    with connect(board) as conn:  # recorded: no flag needed any more
        assert conn.executor.run(["true"]).ok


def test_changed_host_key_is_always_refused(elk, tmp_path):
    known = known_hosts_for(elk, tmp_path)
    board = board_profile(elk, tmp_path, known_hosts=known)
    with connect(board) as conn:
        assert conn.executor.run(["true"]).ok
    elk.regenerate_host_key()
    for trust in (False, True):
        with pytest.raises(HostKeyError) as changed:
            connect(board, trust_host_key=trust)
        text = changed.value.one_line()
        assert "CHANGED" in text and "ssh-keygen -R" in text, text
    assert known.read_text().count("\n") == 1  # the old line is never replaced silently


def test_password_only_when_given(elk, tmp_path):
    known = known_hosts_for(elk, tmp_path)
    no_key = board_profile(elk, tmp_path, known_hosts=known).__class__(
        name="nokey", host=elk.host, port=int(elk.port),
        user=elk.user, known_hosts=known,
        identity_file=Path(_make_key(tmp_path)))  # a key the board does not know
    with pytest.raises(BoardError) as refused:
        connect(no_key)
    _assert_auth_hint(refused.value.one_line(), "refused our SSH key")
    with connect(no_key, password=elk.password) as conn:
        assert conn.executor.run(["id", "-un"]).stdout.strip() == elk.user


def _assert_auth_hint(text: str, what: str) -> None:
    """An authentication failure says so and how to fix it, not "check the network"."""
    assert what in text and "(authentication failed)" in text, text
    for fix in ("invoke ssh-setup", "--password", "identity_file"):
        assert fix in text, (fix, text)
    assert "check the host name" not in text, text


def test_no_key_at_all_is_an_authentication_failure(elk, tmp_path, monkeypatch):
    """No identity_file, no ~/.ssh keys, no agent, no password: paramiko has nothing
    to offer the board."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    known = known_hosts_for(elk, tmp_path)
    bare = board_profile(elk, tmp_path, known_hosts=known).__class__(
        name="bare", host=elk.host, port=int(elk.port), user=elk.user, known_hosts=known)
    with pytest.raises(BoardError) as refused:
        connect(bare)
    _assert_auth_hint(refused.value.one_line(), "no SSH key or password")


def test_executor_runs_hostile_words_literally(elk, tmp_path):
    board = board_profile(elk, tmp_path)
    with connect(board) as conn:
        done = conn.executor.run(["printf", "%s\\n", *HOSTILE], cwd="/tmp")
        assert done.stdout.split("\n")[:-1] == "\n".join(HOSTILE).split("\n")
        failed = conn.executor.run(["sh", "-c", "echo out; echo err >&2; exit 7"], check=False)
        assert (failed.returncode, failed.stdout, failed.stderr) == (7, "out\n", "err\n")
        echoed = conn.executor.run(["cat"], input="through stdin\n")
        assert echoed.stdout == "through stdin\n"
        lines: list[str] = []
        conn.executor.run(["sh", "-c", "echo one; echo two >&2; echo three"], on_line=lines.append)
        assert sorted(lines) == ["one", "three", "two"]
    assert no_pwned_anywhere(elk) == []


def test_stream_yields_lines_and_closing_kills_the_remote_process(elk, tmp_path):
    board = board_profile(elk, tmp_path)
    marker = f"elkstream{int(time.time() * 1000)}"
    script = f'n=0; while :; do n=$((n+1)); echo "{marker} $n"; sleep 0.2; done'
    with connect(board) as conn:
        seen = []
        with conn.stream(["sh", "-c", script]) as stream:
            for line in stream:
                seen.append(line)
                if len(seen) == 3:
                    break
        assert seen == [f"{marker} 1", f"{marker} 2", f"{marker} 3"]
        finished = conn.stream(["sh", "-c", "echo done; exit 3"])
        assert list(finished) == ["done"] and finished.returncode == 3
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        # the marker is passed in two halves so this check never matches itself
        alive = board_sh(elk,
                         'grep -l -- "$1$2" /proc/[0-9]*/cmdline 2>/dev/null || true',
                         marker[:5], marker[5:]).split()
        if not alive:
            break
        time.sleep(0.3)
    assert alive == [], "the streamed process outlived its reader"


def test_sftp_transfers_names_literally(elk, tmp_path):
    board = board_profile(elk, tmp_path)
    with connect(board) as conn:
        base = "/tmp/elk-sftp-test"
        conn.executor.run(["mkdir", "-p", base])
        for name in ("a;touch pwned", "$(touch pwned)"):
            conn.executor.write_bytes(f"{base}/{name}", name.encode())
        listed = conn.executor.run(["ls", "-1", base]).stdout.splitlines()
        assert sorted(listed) == sorted(["a;touch pwned", "$(touch pwned)"])
        conn.executor.run(["rm", "-rf", base])
    assert no_pwned_anywhere(elk) == []


def test_remote_lock_is_exclusive_and_cleared_when_its_session_dies(elk, tmp_path):
    board = board_profile(elk, tmp_path)
    lock = "/tmp/elk-lock-test"

    def script(who: str, wait: int) -> str:
        return board_lock.LOCK_FUNCTIONS + shell_assign(L=lock, W=who, S=wait) + \
            'elk_lock "$L" "$W" 2026-01-01T00:00:00Z "$S" || return 75\necho got\n'

    first = connect(board)
    try:
        assert run_script(first.executor, script("first@test/pid1", 0)).stdout.strip() == "got"
        with connect(board) as second:
            busy = run_script(second.executor, script("second", 1), check=False)
            assert busy.returncode == 75
            owner = busy.stdout.split("lock-busy=", 1)[1]
            error = board_lock.lock_busy_error(board, owner)
            assert "first@test/pid1" in error.one_line()
    finally:
        first.close()  # the holder's SSH session ends: its lock becomes stale
    with connect(board) as third:
        again = run_script(third.executor, script("third", 10), check=False)
        assert again.returncode == 0 and "got" in again.stdout, again
        run_script(third.executor, shell_assign(L=lock) + 'rm -rf "$L"\n')


def test_a_lock_is_adopted_only_while_the_session_that_took_it_lives(elk, tmp_path):
    """A finaliser adopts its session's lock so it outlives the client; one that only
    starts after the client died must give up, not act on a lock that may already be
    someone else's (and that looked free meanwhile)."""
    board = board_profile(elk, tmp_path)
    lock, out = "/tmp/elk-adopt-test", "/tmp/elk-adopt-test.out"
    # a detached finaliser: waits until session $S is gone (when $WAIT), adopts, works 3 s
    finaliser = board_lock.LOCK_FUNCTIONS + \
        'if [ -n "$WAIT" ]; then while [ -e "/proc/$S" ]; do sleep 0.1; done; fi; ' \
        'if elk_lock_adopt "$L"; then echo adopted; else echo gave-up; fi >"$O"; sleep 3'

    def start(wait_for_session_end: bool) -> None:
        with connect(board) as conn:
            run_script(conn.executor, board_lock.LOCK_FUNCTIONS + shell_assign(
                L=lock, O=out, F=finaliser, WAIT="1" if wait_for_session_end else "") +
                'rm -f "$L" "$O"; elk_lock "$L" test 2026-01-01T00:00:00Z 0 || return 75\n'
                'elk_session_pid; S=$ELK_SESSION L=$L O=$O WAIT=$WAIT setsid sh -c "$F" '
                '>/dev/null 2>&1 </dev/null &\n'
                '[ -n "$WAIT" ] || while [ ! -s "$O" ]; do sleep 0.1; done\n')

    def said() -> str:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            text = board_sh(elk, 'cat "$1" 2>/dev/null || true', out).strip()
            if text:
                return text
            time.sleep(0.2)
        return ""

    def held() -> bool:
        return board_sh(elk, board_lock.LOCK_FUNCTIONS + 'elk_lock_live "$1" && echo held || true',
                        lock).strip() == "held"

    start(wait_for_session_end=False)
    assert said() == "adopted"
    assert held(), "an adopted lock must stay held after its session ended"
    time.sleep(3.5)
    assert not held()
    start(wait_for_session_end=True)
    assert said() == "gave-up"
    board_sh(elk, 'sleep 3.5; rm -f "$1" "$2"', lock, out)


def test_unreachable_board_is_one_clear_error(tmp_path):
    from elkbuild.config import Board

    with socket_closed_port() as port:
        board = Board(name="nowhere", host="127.0.0.1", port=port,
                      known_hosts=tmp_path / "kh")
        with pytest.raises(BoardError) as failed:
            connect(board)
    assert "cannot reach mind@127.0.0.1" in failed.value.one_line()


class socket_closed_port:
    """A local port with nothing listening on it."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        port = self.sock.getsockname()[1]
        self.sock.close()
        return port

    def __exit__(self, *exc: object) -> None:
        pass


def test_streams_and_commands_share_one_connection(elk, tmp_path):
    board = board_profile(elk, tmp_path)
    with connect(board) as conn:
        stream = conn.stream(["sh", "-c", "for i in 1 2 3 4 5; do echo $i; sleep 0.3; done"])
        got: list[str] = []
        reader = threading.Thread(target=lambda: got.extend(stream))
        reader.start()
        assert conn.executor.run(["echo", "meanwhile"]).stdout == "meanwhile\n"
        reader.join(timeout=30)
        assert got == ["1", "2", "3", "4", "5"]


def test_ssh_setup_installs_a_key_with_the_password_from_the_environment(elk, tmp_path):
    from cli_helpers import run_task
    from deploy.helpers import project_file

    project = project_file(elk, tmp_path)
    new_key = Path(_make_key(tmp_path))
    first = run_task("ssh-setup", "--board", "emu", "--key", f"{new_key}.pub", project=project,
                     env={"ELKBUILD_BOARD_PASSWORD": elk.password})
    assert first.returncode == 0, first.stderr
    assert "installed" in first.stdout
    again = run_task("ssh-setup", "--board", "emu", "--key", f"{new_key}.pub", project=project,
                     env={"ELKBUILD_BOARD_PASSWORD": elk.password})
    assert "already had" in again.stdout
    # the new key now logs in on its own, and the password was stored nowhere
    board = board_profile(elk, tmp_path).__class__(
        name="k", host=elk.host, port=int(elk.port), user=elk.user,
        known_hosts=tmp_path / "known_hosts", identity_file=new_key)
    with connect(board) as conn:
        assert conn.executor.run(["true"]).ok
    import re

    secret = re.compile(rf"(?<![\w./-]){re.escape(elk.password)}(?![\w./-])")
    for name in ("known_hosts", "elkbuild.yaml"):
        assert not secret.search((tmp_path / name).read_text()), name
    assert not secret.search(first.stdout + first.stderr + again.stdout + again.stderr)
