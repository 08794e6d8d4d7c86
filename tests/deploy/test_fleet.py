"""The group helper: one operation per board in parallel, one result per board."""

from __future__ import annotations

import threading
import time

from elkbuild.config import Board
from elkbuild.deploy.deployer import DeployResult
from elkbuild.deploy.many import summary_rows, with_failures_as_results
from elkbuild.deploy.fleet import on_boards
from elkbuild.errors import BoardError


def _boards(*names: str) -> list[Board]:
    return [Board(name=name, host=f"{name}.local") for name in names]


def test_operations_run_in_parallel_and_keep_board_order():
    running = []
    lock = threading.Lock()
    peak = [0]

    def slow(board, _line):
        with lock:
            running.append(board.name)
            peak[0] = max(peak[0], len(running))
        time.sleep(0.3)
        with lock:
            running.remove(board.name)
        return f"done {board.name}"

    started = time.monotonic()
    group = on_boards(_boards("a", "b", "c", "d"), slow)
    assert time.monotonic() - started < 1.0
    assert peak[0] == 4
    assert list(group) == ["done a", "done b", "done c", "done d"]
    assert group.ok and list(group.succeeded) == ["a", "b", "c", "d"]


def test_one_board_failing_does_not_stop_the_others():
    def flaky(board, _line):
        if board.name == "b":
            raise BoardError("b.local refused our SSH key", "install your key")
        if board.name == "c":
            raise EOFError()
        return DeployResult(host=board.name, ok=board.name != "d", message="health check")

    group = on_boards(_boards("a", "b", "c", "d"), flaky)
    assert not group.ok
    assert list(group.succeeded) == ["a"]
    assert list(group.failed) == ["b", "c", "d"]
    assert "refused our SSH key" in group.failed["b"] and "install your key" in group.failed["b"]
    assert group.failed["c"].startswith("connection lost")
    assert isinstance(group.raised["b"], BoardError)
    results = with_failures_as_results(group)
    assert [r.host for r in results] == ["a", "b", "c", "d"]
    assert [row[1] for row in summary_rows(results)] == ["ok", "FAILED", "FAILED", "FAILED"]


def test_sushi_status_of_every_board_in_one_summary(fresh_emulated_board, tmp_path):
    """`status --all` asks each board in parallel and prints one result per board."""
    import json

    from cli_helpers import run_task
    from deploy.helpers import known_hosts_for
    from elkbuild.board.host_keys import known_hosts_name

    elk = fresh_emulated_board
    known = known_hosts_for(elk, tmp_path)
    key_type, key = elk.host_key_line.split()[-2:]
    with known.open("a") as handle:
        handle.write(f"{known_hosts_name('localhost', int(elk.port))} {key_type} {key}\n")
    (tmp_path / "elkbuild.yaml").write_text("boards:\n" + "".join(
        f"  {name}:\n    host: {host}\n    port: {int(elk.port)}\n"
        f"    known_hosts: {known}\n    identity_file: {elk.client_key}\n"
        for name, host in (("left", "127.0.0.1"), ("right", "localhost"))))
    done = run_task("status", "--all", "--json", project=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] and [b["host"] for b in result["boards"]] == ["left", "right"]
    assert all(b["running"] is False for b in result["boards"])
    table = run_task("status", "--all", project=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "left" in table.stdout and "right" in table.stdout and "running=False" in table.stdout
