"""A wrong command line is one `elkbuild: error:` line with a hint, exit 2, no traceback."""

from __future__ import annotations

import pytest

from cli_helpers import assert_one_line_error, run_task
from elkbuild.program import translate

CASES = [
    (["deploy", "--bogus"], ["unknown flag --bogus", "task deploy", "invoke --help deploy"]),
    (["no-such-task"], ["unknown task 'no-such-task'", "invoke --list"]),
    (["--frobnicate"], ["unknown flag --frobnicate"]),
    (["deploy", "--port"], ["flag --port needs a value"]),
    (["deploy", "--host", "h", "--port", "abc"], ["--port 'abc'", "whole number"]),
    (["deploy", "--host", "h", "--port=abc"], ["--port 'abc'", "whole number"]),
    (["monitor", "--host", "h", "--duration", "soon"], ["--duration 'soon'", "must be a number"]),
    (["logs", "--host", "h", "--lines", "many"], ["--lines 'many'", "whole number"]),
    (["build-deps", "--jobs"], ["flag --jobs needs a value", "invoke --help build-deps"]),
]


@pytest.mark.parametrize("argv,needles", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_command_line_mistakes_exit_2_with_one_line(argv, needles, tmp_path):
    result = run_task(*argv, project=tmp_path)
    assert_one_line_error(result, "elkbuild: error:", *needles, code=2)
    assert result.stdout == ""


def test_a_message_it_does_not_know_still_becomes_one_line():
    exit = translate(ValueError("something\nodd   happened"), ["deploy"], "deploy")
    assert exit.code == 2
    assert exit.message == ("elkbuild: error: something odd happened "
                            "(hint: `invoke --help deploy` lists its flags)")
