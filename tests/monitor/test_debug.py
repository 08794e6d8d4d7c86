"""`invoke debug`: the gdb command (pure), gdb's output (golden), and a real gdb run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import require_real_part
from elkbuild.monitor.debug import (
    DebugResult, conclude, gdb_argv, parse_gdb_output, render, run_debug, sushi_args)
from elkbuild.errors import BoardError, UsageError
from elkbuild.executor import LocalExecutor

CAPTURES = Path(__file__).parent


def test_gdb_command_is_the_published_recipe_in_batch_mode() -> None:
    argv = gdb_argv("sushi_b64", sushi_args("/home/mind/config_files/rig.json"))
    assert argv == ["gdb", "-batch", "-nx", "-ex", "catch signal SIGXCPU", "-ex", "run",
                    "-ex", "bt", "--args", "sushi_b64", "-r", "--debug-mode-sw", "-c",
                    "/home/mind/config_files/rig.json"]


def test_gdb_command_with_timeout_and_other_gdb() -> None:
    argv = gdb_argv("sushi_b64", ["-c", "a b.json"], gdb="gdb-multiarch", timeout=12.5)
    assert argv[:3] == ["timeout", "12.5", "gdb-multiarch"]
    assert argv[-2:] == ["-c", "a b.json"]  # an argv: spaces need no quoting here


def test_config_is_required() -> None:
    with pytest.raises(UsageError, match="--config"):
        sushi_args("")


def test_parse_stop_in_a_named_thread() -> None:
    result = parse_gdb_output((CAPTURES / "gdb_caught_in_thread.txt").read_text())
    assert result.caught and result.thread == "sushi_rt"
    assert [f.number for f in result.frames] == [0, 1, 2, 3, 4, 5]
    assert result.frames[3].function == "audio_thread"
    assert result.frames[3].location == "msw.c:11"
    assert result.frames[1].address == "0x00007ffff7e5ff4f"
    assert result.culprit is result.frames[3]  # glibc frames are skipped


def test_parse_stop_without_debug_info() -> None:
    result = parse_gdb_output((CAPTURES / "gdb_caught_no_debug_info.txt").read_text())
    assert result.caught and result.thread is None
    assert result.culprit.function == "process_block" and result.culprit.location is None
    assert "-> #3  process_block" in render(result)


def test_parse_program_that_never_switched() -> None:
    result = parse_gdb_output((CAPTURES / "gdb_exited_normally.txt").read_text())
    assert not result.caught and result.ended == "exited normally" and result.frames == ()
    conclude(result)  # no switch is an answer, not an error
    with pytest.raises(BoardError, match="exited with code 01"):
        conclude(DebugResult(False, ended="exited with code 01", output="config not found"))


@pytest.fixture(scope="module")
def fake_sushi(tmp_path_factory) -> Path:
    require_real_part(shutil.which("gdb") is not None and shutil.which("gcc") is not None,
                      "gdb and gcc", "apt-get install gdb gcc")
    out = tmp_path_factory.mktemp("debug") / "fake_sushi"
    LocalExecutor().run(["gcc", "-g", "-O0", "-pthread", str(CAPTURES / "fake_mode_switch.c"),
                         "-o", str(out)])
    return out


def test_real_gdb_catches_the_first_switch(fake_sushi: Path) -> None:
    result = run_debug(LocalExecutor(), str(fake_sushi), sushi_args("rig.json"), timeout=60)
    assert result.caught, result.output
    assert result.thread == "sushi_rt_audio"
    assert result.culprit.function == "process_block"
    assert result.culprit.location.startswith(str(CAPTURES / "fake_mode_switch.c"))
    assert [f.function for f in result.frames].index("audio_thread") > 0


def test_real_gdb_without_debug_mode_sw_sees_no_switch(fake_sushi: Path) -> None:
    result = run_debug(LocalExecutor(), str(fake_sushi), ["-r", "-c", "rig.json"], timeout=60)
    assert not result.caught and result.ended == "exited normally"


def test_real_gdb_missing_program_is_one_clear_error(tmp_path: Path, fake_sushi: Path) -> None:
    with pytest.raises(BoardError, match="No such file or directory"):
        run_debug(LocalExecutor(), str(tmp_path / "sushi_b64"), ["-c", "x"], timeout=30)


def test_debug_task_without_config_is_a_usage_error() -> None:
    from cli_helpers import assert_one_line_error, run_task

    result = run_task("debug", "--host", "elk-pi")
    assert_one_line_error(result, "debug needs --config", code=2)


def test_remote_mode_commands() -> None:
    from elkbuild.monitor.debug import remote_gdb_argv, server_argv

    assert server_argv("gdbserver", 4242, "/usr/bin/sushi_b64", ["-r"]) == \
        ["gdbserver", "127.0.0.1:4242", "/usr/bin/sushi_b64", "-r"]
    assert server_argv("elk-gdbstub", 4242, "/usr/bin/sushi_b64", ["-r"]) == \
        ["elk-gdbstub", "4242", "/usr/bin/sushi_b64", "-r"]
    argv = remote_gdb_argv("gdb-multiarch", Path("/s/usr/bin/sushi_b64"), 5000, Path("/s"))
    assert argv[:5] == ["gdb-multiarch", "-batch", "-nx", "-ex", "set sysroot /s"]
    commands = [argv[i + 1] for i, word in enumerate(argv) if word == "-ex"]
    assert commands[1:] == ["file /s/usr/bin/sushi_b64", "target remote 127.0.0.1:5000",
                            "catch signal SIGXCPU", "continue", "bt", "kill"]


def test_ldd_output_gives_the_libraries_to_copy() -> None:
    from elkbuild.monitor.debug import library_paths

    ldd = """\tlinux-vdso.so.1 (0x0000005502858000)
\t/usr/lib/elk-board/libelk-procshim.so (0x0000005502880000)
\tlibc.so.6 => /lib/aarch64-linux-gnu/libc.so.6 (0x00000055028b0000)
\tlibmissing.so => not found
\t/lib/ld-linux-aarch64.so.1 (0x0000005500000000)
"""
    assert library_paths(ldd) == ["/usr/lib/elk-board/libelk-procshim.so",
                                  "/lib/aarch64-linux-gnu/libc.so.6",
                                  "/lib/ld-linux-aarch64.so.1"]
