"""`invoke demo`, the README's main job, as a user runs it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cli_helpers import REPO, assert_one_line_error, run_task


def copy_project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for folder in ("sushi-configs", "plugins"):
        shutil.copytree(REPO / folder, root / folder)
    shutil.rmtree(root / "sushi-configs" / "rendered")
    return root


def test_demo_renders_and_checks_every_rig_for_both_versions(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    result = run_task("demo", "--json", project=root)
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
