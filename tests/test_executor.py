"""The one executor: argv only, logged, dry-run aware, errors as one line."""

from __future__ import annotations

import sys

import pytest

from elkbuild.errors import CommandFailed, ToolMissing
from elkbuild.executor import LocalExecutor


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
