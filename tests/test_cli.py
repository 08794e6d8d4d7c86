"""The task layer's promises: one-line errors, exit codes, tracebacks only on request."""

from __future__ import annotations

import pytest
from invoke import Context
from invoke.exceptions import Exit

from elkbuild.cli import elk_task
from elkbuild.errors import ConfigError, UsageError, ValidationFailed


def call(task, *args, **kwargs):
    return task.body(Context(), *args, **kwargs)


@elk_task()
def fails_with(c, kind="config"):
    if kind == "config":
        raise ConfigError("rig.yaml", "tracks[0].name", "", "must be a non-empty string")
    if kind == "usage":
        raise UsageError("--os must be '0.11' or '1.x'")
    if kind == "many":
        raise ValidationFailed("config.json", ["tracks[0]: a", "midi: b"])
    raise ZeroDivisionError("boom")


def test_elkbuild_error_is_one_line_exit_1(capsys) -> None:
    with pytest.raises(Exit) as caught:
        call(fails_with, kind="config")
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "elkbuild: error: rig.yaml: tracks[0].name is ''; must be a non-empty string"]


def test_usage_error_exits_2(capsys) -> None:
    with pytest.raises(Exit) as caught:
        call(fails_with, kind="usage")
    assert caught.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_validation_failure_lists_each_problem(capsys) -> None:
    with pytest.raises(Exit):
        call(fails_with, kind="many")
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["elkbuild: error: config.json: 2 problems", "  tracks[0]: a", "  midi: b"]


def test_unexpected_exception_is_still_one_line(capsys) -> None:
    with pytest.raises(Exit) as caught:
        call(fails_with, kind="bug")
    err = capsys.readouterr().err
    assert caught.value.code == 1
    assert "Traceback" not in err and "internal error: ZeroDivisionError: boom" in err


def test_verbose_shows_traceback(capsys) -> None:
    with pytest.raises(Exit):
        call(fails_with, kind="bug", verbose=True)
    assert "Traceback" in capsys.readouterr().err


def test_verbose_flag_is_part_of_every_task() -> None:
    assert "verbose" in [arg.name for arg in fails_with.get_arguments()]
