"""Golden captures through the pure mode-switch parsers (both OS profiles)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from elkbuild.errors import CaptureError
from elkbuild.monitor.parsers import (
    RowError, ThreadRow, header_profile, parse_evl_row, parse_xenomai_row, split_snapshots)

CAPTURES = Path(__file__).parent
GOLDEN = sorted(p.with_suffix("").with_suffix(".txt")
                for p in CAPTURES.glob("*.expected.json"))


def parse_file(path: Path, **kwargs):
    with path.open(encoding="utf-8") as handle:
        return list(split_snapshots(handle, str(path), **kwargs))


@pytest.mark.parametrize("capture", GOLDEN, ids=lambda p: p.stem)
def test_golden_capture(capture: Path) -> None:
    expected = json.loads(capture.with_suffix(".expected.json").read_text())
    got = [{"profile": s.profile, "line": s.line,
            "rows": [[r.cpu, r.pid, r.name, r.switches] for r in s.rows]}
           for s in parse_file(capture)]
    assert got == expected


def test_every_golden_capture_has_its_expectation() -> None:
    captures = {p.stem for p in CAPTURES.glob("*.txt")
                if not p.name.startswith(("gdb_", "malformed_"))}
    assert captures == {p.stem for p in GOLDEN}
    assert len(captures) >= 5


def test_published_xenomai_sample_keeps_names_with_spaces_and_brackets() -> None:
    (snapshot,) = parse_file(CAPTURES / "xenomai_published_sample.txt")
    assert snapshot.profile == "0.11"
    assert [r.name for r in snapshot.rows] == ["[ROOT]", "bela-audio", "[IRQ16: [timer]]"]
    assert [r.kernel for r in snapshot.rows] == [True, False, True]
    assert snapshot.rows[1] == ThreadRow(cpu=0, pid=14405, name="bela-audio", switches=1)


def test_xenomai_row_reads_msw_not_the_other_counters() -> None:
    row = parse_xenomai_row("  1  977    12         5          7          3     00048046"
                            "  100.0  sushi worker 2")
    assert (row.cpu, row.pid, row.switches, row.name) == (1, 977, 12, "sushi worker 2")


@pytest.mark.parametrize("line, column", [
    ("  0  0      x          835043     0          0     00018000   79.0  [ROOT]", "MSW"),
    ("  0  0      0          835043     0          0     0001800G   79.0  [ROOT]", "STAT"),
    ("  0  0      0          835043     0          0     00018000   79  [ROOT]", "%CPU"),
    ("  0  0      0          835043     0          0     00018000   79.0", "9 columns"),
])
def test_xenomai_row_errors_name_the_column(line: str, column: str) -> None:
    with pytest.raises(RowError, match=column.replace("%", "%")):
        parse_xenomai_row(line)


def test_evl_blank_stat_and_state_labels() -> None:
    header = "CPU   PID   ISW     CTXSW     SYS       RWA       STAT     NAME"
    assert header_profile(header) == "1.x"
    blank = "  2   614   0       90011     150000    3                  sushi rt worker"
    labelled = "  3   650   0       55        80        0          wp      sushi_b64"
    assert parse_evl_row(blank) == ThreadRow(2, 614, "sushi rt worker", 0)
    assert parse_evl_row(labelled) == ThreadRow(3, 650, "sushi_b64", 0)


def test_evl_name_that_looks_like_state_labels_is_kept_whole() -> None:
    # STAT is blank and the thread is called "W R": only the column layout can tell.
    row = parse_evl_row("  1   700   2       10        20        30                 W R")
    assert row == ThreadRow(1, 700, "W R", 2)


def test_evl_pid_running_into_isw_is_split_by_column() -> None:
    # pid 123456 fills its 6-wide field, so ISW follows with no space
    row = parse_evl_row("  0   12345612      987       12        0          W       audio")
    assert (row.pid, row.switches, row.name) == (123456, 12, "audio")
    row = parse_evl_row("  0   12345674       10        20        30         R       W R")
    assert (row.pid, row.switches, row.name) == (1234567, 4, "W R")


def test_evl_isw_too_wide_to_split_is_an_error() -> None:
    with pytest.raises(RowError, match="ISW ran into CTXSW"):
        parse_evl_row("  0   600   123456789012      0         0          W       audio")


def test_empty_snapshot_between_reports() -> None:
    snapshots = parse_file(CAPTURES / "xenomai_restart_and_empty.txt")
    assert [len(s.rows) for s in snapshots] == [2, 1, 0, 2, 2]


def test_marker_ends_a_snapshot_without_waiting_for_the_next_header() -> None:
    marker = "--end--"
    lines = iter([
        "CPU  PID    MSW        CSW        XSC        PF    STAT       %CPU  NAME",
        "  0  0      0          835043     0          0     00018000   79.0  [ROOT]",
        marker,
    ])
    stream = split_snapshots(lines, "board", marker=marker)
    first = next(stream)  # must not need more input than the marker
    assert first.rows[0].name == "[ROOT]"
    assert list(stream) == []


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = CAPTURES / "malformed_row_crlf.txt"
    with pytest.raises(CaptureError) as caught:
        parse_file(path)
    error = caught.value
    assert error.line == 6
    assert f"{path}:6:" in error.one_line()
    assert "CSW is '7O532'" in error.one_line()
    assert "\n" not in error.one_line()


def test_row_before_header(tmp_path: Path) -> None:
    path = tmp_path / "cut.txt"
    path.write_text("  0  0      0          835043     0          0     00018000   79.0  [ROOT]\n")
    with pytest.raises(CaptureError, match=r"cut.txt:1: a thread row before any header"):
        parse_file(path)


def test_mixed_profiles_are_refused(tmp_path: Path) -> None:
    xeno = (CAPTURES / "xenomai_published_sample.txt").read_text()
    evl = (CAPTURES / "evl_blank_stat_and_spaces.txt").read_text()
    path = tmp_path / "mixed.txt"
    path.write_text(xeno + evl)
    with pytest.raises(CaptureError, match=r"mixed.txt:5: a 1.x header"):
        parse_file(path)


def test_expected_profile_is_enforced() -> None:
    with pytest.raises(CaptureError, match="0.11 reports"):
        parse_file(CAPTURES / "evl_wide_numbers.txt", profile="0.11")
