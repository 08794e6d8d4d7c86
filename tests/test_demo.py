"""`invoke demo`, the README's main job, as a user runs it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import REPO, assert_one_line_error, run_task

from elkbuild.emulated_board import EmulatedBoard, free_port
from elkbuild.executor import LocalExecutor


def copy_project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for folder in ("sushi-configs", "plugins"):
        shutil.copytree(REPO / folder, root / folder)
    shutil.rmtree(root / "sushi-configs" / "rendered")
    return root


def test_demo_renders_and_checks_every_rig_for_both_versions(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    result = run_task("demo", "--json", "--rigs-only", project=root)
    assert result.returncode == 0, result.stderr
    steps = [json.loads(line) for line in result.stdout.splitlines()]
    rigs = sorted(p.stem for p in (REPO / "sushi-configs").glob("*.yaml"))
    rendered = [s["detail"] for s in steps if s["step"] == "rendered"]
    checked = [s["detail"] for s in steps if s["step"] == "checked"]
    assert len(rendered) == len(checked) == 2 * len(rigs)
    assert all("accepted" in line for line in checked)
    for rig in rigs:
        for version in ("0.11", "1.x"):
            written = root / "sushi-configs" / "rendered" / f"{rig}.{version}.json"
            # the demo writes exactly what the committed golden files hold
            committed = REPO / "sushi-configs" / "rendered" / written.name
            assert written.read_text() == committed.read_text()


def test_demo_stops_on_a_bad_rig_and_writes_nothing(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    (root / "sushi-configs" / "zz-broken.yaml").write_text(
        "tracks:\n  - name: a\n    channels: 9\n")
    result = run_task("demo", project=root)
    assert_one_line_error(result, "zz-broken.yaml", "tracks[0].channels")
    assert not (root / "sushi-configs" / "rendered").exists()


@pytest.mark.slow
def test_demo_runs_the_whole_loop_on_the_emulated_board(tmp_path: Path, debian_arm64_image,
                                                        elkbuild_cache: Path) -> None:
    """The README's main job as a user runs it: from rigs to a plugin processing audio
    on the emulated board, then the monitor; a second run redoes nothing."""
    root = copy_project(tmp_path)
    name, port = f"demo-{tmp_path.name}"[:40], free_port()
    args = ("demo", "--json", "--board-name", name, "--port", str(port), "--monitor-seconds", "2")
    env = {"ELKBUILD_CACHE": str(elkbuild_cache)}
    try:
        first = run_task(*args, project=root, env=env, timeout=1800)
        assert first.returncode == 0, first.stderr[-3000:]
        lines = [json.loads(line) for line in first.stdout.splitlines()]
        steps = {s["step"]: s["detail"] for s in lines if "step" in s}
        assert {"image", "built", "board", "deployed", "processed", "monitored"} <= set(steps)
        assert "ABI gate elk-0.11, elk-1.x passed" in steps["built"]
        assert "Sushi healthy" in steps["deployed"]
        shown = re.search(r"delayed by the (\d+) samples the plugin reports: ([^;]+);", steps["processed"])
        assert shown, steps["processed"]
        assert float(shown.group(2)) < 1e-5 and int(shown.group(1)) > 0
        assert any("threads" in s for s in lines if "step" not in s)  # the monitor's snapshots

        again = run_task(*args, project=root, env=env, timeout=600)
        assert again.returncode == 0, again.stderr[-3000:]
        steps = {s["step"]: s["detail"] for s in map(json.loads, again.stdout.splitlines())
                 if "step" in s}
        assert "up to date" in steps["built"] and "unchanged" in steps["image"]
        assert "0 files, 0 bytes sent; unchanged" in steps["deployed"]
    finally:
        EmulatedBoard(LocalExecutor(), elkbuild_cache, name=name).destroy()


def test_the_board_check_lines_up_at_the_reported_latency_only():
    """The offline check uses the latency the plugin reports, not the best of many:
    a plugin that is late by one sample more than it says fails."""
    from elkbuild.demo import delayed_difference
    from elkbuild.vst3host.run import chain_latency, result_line

    def reported_latency(output: str) -> int | None:
        return chain_latency(result_line(output))

    line = '{"plugins": [{"bundle": "/p/A.vst3", "name": "A", "latency_samples": 63}, ' \
           '{"bundle": "/p/B.vst3", "name": "B", "latency_samples": 64}], "frames": 10}'
    assert reported_latency("log line\n" + line + "\n") == 127
    assert reported_latency("no result here\n") is None
    assert reported_latency('{"plugins": [{"name": "A"}]}') is None
    signal = np.sin(np.arange(4000) / 7.0).astype(np.float32)
    late = np.zeros_like(signal)
    late[128:] = signal[:-128]
    assert delayed_difference(late, signal, 128) == 0.0
    assert delayed_difference(late, signal, 127) > 0.1
