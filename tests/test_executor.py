"""The one executor: argv only, logged, dry-run aware, errors as one line."""

from __future__ import annotations

import sys

import pytest

from elkbuild.errors import CommandFailed, ToolMissing
from elkbuild.executor import LocalExecutor, installed, require


def test_runs_argv_without_a_shell(tmp_path) -> None:
    # A shell would expand `$HOME` and run `; touch`; an argv list passes them literally.
    marker = tmp_path / "pwned"
    done = LocalExecutor().run(["echo", "$HOME; touch " + str(marker)])
    assert done.stdout.strip() == f"$HOME; touch {marker}"
    assert not marker.exists()


def test_dry_run_records_but_does_not_run(tmp_path) -> None:
    target = tmp_path / "made"
    executor = LocalExecutor(dry_run=True)
    done = executor.run(["touch", str(target)])
    assert done.ok and not target.exists()
    assert executor.history == [["touch", str(target)]]


def test_failure_names_command_and_last_output_line() -> None:
    script = "import sys; print('first'); print('the real reason', file=sys.stderr); sys.exit(3)"
    with pytest.raises(CommandFailed) as caught:
        LocalExecutor().run([sys.executable, "-c", script], hint="check the input")
    error = caught.value
    assert error.returncode == 3
    assert "the real reason" in error.one_line() and "check the input" in error.one_line()
    assert "\n" not in error.one_line()


def test_unchecked_failure_returns_result() -> None:
    done = LocalExecutor().run([sys.executable, "-c", "raise SystemExit(4)"], check=False)
    assert done.returncode == 4 and not done.ok


def test_missing_program_is_tool_missing() -> None:
    with pytest.raises(ToolMissing, match="no-such-program-elk"):
        LocalExecutor().run(["no-such-program-elk", "--version"])


def test_streaming_delivers_lines_as_they_come_and_captures_them() -> None:
    seen: list[str] = []
    script = "import sys\nfor i in range(3):\n    print('line', i, flush=True)\nprint('err', file=sys.stderr)"
    done = LocalExecutor().run([sys.executable, "-c", script], on_line=seen.append)
    assert [s for s in seen if s.startswith("line")] == ["line 0", "line 1", "line 2"]
    assert "err" in seen
    assert done.stdout.splitlines() == ["line 0", "line 1", "line 2"]
    assert done.stderr.strip() == "err"


def test_input_is_passed_to_stdin() -> None:
    done = LocalExecutor().run([sys.executable, "-c", "import sys; print(sys.stdin.read()[::-1])"],
                               input="abc")
    assert done.stdout.strip() == "cba"


def test_require_finds_a_program_or_says_how_to_install_it() -> None:
    assert require("sh").endswith("/sh") and installed("sh")
    assert not installed("no-such-program-elk")
    with pytest.raises(ToolMissing) as caught:
        require("no-such-program-elk", "apt-get install elk")
    assert "no-such-program-elk" in caught.value.one_line()
    assert "apt-get install elk" in caught.value.one_line()


def test_transfers_and_streams_are_recorded_and_skipped_in_dry_run(tmp_path) -> None:
    source = tmp_path / "source.txt"
    source.write_text("payload")
    dry = LocalExecutor(dry_run=True)
    dry.send_file(source, str(tmp_path / "sent"))
    dry.write_bytes(str(tmp_path / "written"), b"abc")
    dry.fetch_file(str(source), tmp_path / "fetched")
    with dry.stream(["sh", "-c", "echo never"]) as lines:
        assert list(lines) == []
    assert dry.read_bytes(str(source)) == b"payload"  # reading changes nothing
    assert not {"sent", "written", "fetched"} & {p.name for p in tmp_path.iterdir()}
    assert [entry[0] for entry in dry.history] == ["<send>", "<write>", "<fetch>", "sh", "<read>"]


def test_local_transfers_copy_and_streams_yield_lines(tmp_path) -> None:
    source = tmp_path / "source.txt"
    source.write_text("payload")
    local = LocalExecutor()
    local.send_file(source, str(tmp_path / "sent"))
    local.fetch_file(str(tmp_path / "sent"), tmp_path / "fetched")
    local.write_bytes(str(tmp_path / "written"), b"abc")
    assert (tmp_path / "fetched").read_text() == "payload"
    assert local.read_bytes(str(tmp_path / "written")) == b"abc"
    with local.stream([sys.executable, "-c", "print('one'); print('two')"]) as lines:
        assert list(lines) == ["one", "two"]


def test_a_silent_stream_raises_within_its_bound_and_ends_the_command():
    import time

    from elkbuild.errors import StreamSilent

    local = LocalExecutor()
    started = time.monotonic()
    with pytest.raises(StreamSilent, match="printed nothing for 0.5 s"):
        with local.stream([sys.executable, "-c", "print('one', flush=True); import time; "
                           "time.sleep(30)"], silence=0.5) as lines:
            assert next(iter(lines)) == "one"
            list(lines)
    assert time.monotonic() - started < 5
