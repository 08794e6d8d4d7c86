"""`invoke sushi-config` and `invoke sushi-check` as a user runs them (real subprocesses)."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, run_task
from sushi_helpers import BAD_CONFIGS, BAD_RIGS, EXAMPLES, make_project, project_config

from elkbuild.errors import ConfigError
from elkbuild.sushi import render_rig

# rig file -> (Sushi version to render for, text that must follow "<rig file>: ")
BAD_RIG_KEYS = {
    "unknown-top-key.yaml": ("1.x", "track is not a known key"),
    "duplicate-plugin-name.yaml": ("1.x", "tracks[1].plugins[0].name is 'gain'"),
    "unknown-project.yaml": ("1.x", "tracks[0].plugins[0].project is 'NeuralSaturater'"),
    "project-with-path.yaml": ("1.x", "tracks[0].plugins[0].path is"),
    "channels-and-buses.yaml": ("1.x", "tracks[0].channels is 2"),
    "cc-to-unknown-processor.yaml": ("1.x", "midi.cc[0].processor is 'jx-10'"),
    "midi-channel-16.yaml": ("1.x", "midi.inputs[0].channel is 16"),
    "parameter-above-one.yaml": ("1.x", "tracks[0].plugins[0].parameters.drive is 1.5"),
    "state-on-0.11.yaml": ("0.11", "tracks[0].plugins[0].parameters is a Sushi 1.x feature"),
    "pre-track-on-0.11.yaml": ("0.11", "pre_track is a Sushi 1.x feature"),
    "unknown-internal-uid.yaml": ("1.x", "tracks[0].plugins[0].uid is 'sushi.testing.peak_meter'"),
    "no-tracks.yaml": ("1.x", "tracks is []"),
    "input-beyond-channels.yaml": ("1.x", "tracks[0].inputs[1] is 1"),
    "osc-both-forms.yaml": ("1.x", "osc needs exactly one of"),
    "cv-beyond-host.yaml": ("1.x", "cv.inputs[0].cv is 2"),
    "three-channels-on-0.11.yaml": ("0.11", "tracks[0].channels is 3"),
    "event-two-kinds.yaml": ("1.x", "events[0] needs exactly one of"),
    "vst2-with-uid.yaml": ("1.x", "tracks[0].plugins[0].uid is 'mda Delay'"),
    "name-is-a-number.yaml": ("1.x", "tracks[0].name is 1"),
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A throw-away project with this repo's rigs and plugin identities."""
    return make_project(tmp_path / "project")


def _in_parallel(runs: dict[str, tuple]) -> dict[str, subprocess.CompletedProcess]:
    """Run many independent CLI calls at once: each is a separate Python start-up."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {key: pool.submit(run_task, *args, **kwargs) for key, (args, kwargs)
                   in runs.items()}
        return {key: future.result() for key, future in futures.items()}


# Through the real command line (each a Python start-up, so not all of them); every
# bad rig is also loaded in-process below.
CLI_BAD_RIGS = sorted(BAD_RIG_KEYS)[::2] + ["state-on-0.11.yaml", "pre-track-on-0.11.yaml"]


@pytest.fixture(scope="module")
def bad_rig_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    project = make_project(tmp_path_factory.mktemp("bad-rigs") / "project")
    runs = {}
    for name in CLI_BAD_RIGS:
        version = BAD_RIG_KEYS[name][0]
        out = project / f"{name}.json"
        runs[name] = (("sushi-config", "--rig", str(BAD_RIGS / name), "--os", version,
                       "--out", str(out)), {"project": project})
    return {"project": project, **_in_parallel(runs)}


def test_every_bad_rig_has_an_expectation():
    assert {p.name for p in BAD_RIGS.glob("*.yaml")} == set(BAD_RIG_KEYS) | {"yaml-syntax.yaml"}


def test_enough_bad_rigs_go_through_the_command_line():
    assert len(set(CLI_BAD_RIGS)) >= 10


@pytest.mark.parametrize("name", sorted(set(CLI_BAD_RIGS)))
def test_bad_rig_is_one_line_naming_file_and_key(name: str, bad_rig_runs: dict):
    _, expected = BAD_RIG_KEYS[name]
    assert_one_line_error(bad_rig_runs[name], f"{BAD_RIGS / name}: {expected}")
    assert not (bad_rig_runs["project"] / f"{name}.json").exists()


@pytest.mark.parametrize("name", sorted(BAD_RIG_KEYS))
def test_bad_rig_error_in_process(name: str, project: Path):
    version, expected = BAD_RIG_KEYS[name]
    with pytest.raises(ConfigError) as caught:
        render_rig(project_config(project), BAD_RIGS / name, version)
    line = caught.value.one_line()
    assert line.startswith(f"{BAD_RIGS / name}: {expected}") and "\n" not in line


def test_yaml_syntax_error_names_line_and_column(project: Path):
    rig = BAD_RIGS / "yaml-syntax.yaml"
    result = run_task("sushi-config", "--rig", str(rig), project=project)
    assert_one_line_error(result, f"{rig}:4:4", "not valid YAML")


def test_render_all_rigs_then_check_they_are_current(project: Path):
    result = run_task("sushi-config", "--os", "all", project=project)
    assert result.returncode == 0, result.stderr
    rendered = sorted(p.name for p in (project / "sushi-configs" / "rendered").glob("*.json"))
    assert rendered == [f"{rig}.{v}.json" for rig in ("multi-track-midi", "neural-mono",
                                                       "stereo-chain") for v in ("0.11", "1.x")]
    assert result.stdout.count("wrote: ") == 6

    check = run_task("sushi-config", "--check", project=project)
    assert check.returncode == 0, check.stderr
    assert check.stdout.count("up to date: ") == 6

    rig = project / "sushi-configs" / "stereo-chain.yaml"
    rig.write_text(rig.read_text().replace("samplerate: 48000", "samplerate: 44100"))
    stale = run_task("sushi-config", "--check", project=project)
    assert stale.returncode == 1
    assert "OUT OF DATE: sushi-configs/rendered/stereo-chain.1.x.json" in stale.stdout
    assert "rendered Sushi configs differ from their rigs: 2 problems" in stale.stderr


def test_render_one_rig_to_a_file_as_json(project: Path):
    out = project / "board" / "guitar.json"
    result = run_task("sushi-config", "-r", "neural-mono", "--os", "0.11", "--out", str(out),
                      "--json", project=project)
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout)
    assert line["file"] == str(out) and line["os_version"] == "0.11" and line["changed"]
    assert json.loads(out.read_text())["tracks"][0]["mode"] == "mono"
    again = run_task("sushi-check", str(out), project=project)
    assert again.returncode == 0
    assert "accepted by Sushi 0.11 (assumed Sushi 0.11" in again.stdout


def test_unknown_version_is_a_usage_error(project: Path):
    result = run_task("sushi-config", "--os", "2.0", project=project)
    assert_one_line_error(result, "--os '2.0'", code=2)


# Every example is checked in-process (test_sushi_check.py); here one per version goes
# through the command line, to pin what a user sees.
@pytest.mark.parametrize("path", [EXAMPLES / "0.11" / "config_multi_track.json",
                                  EXAMPLES / "1.x" / "arp_peakmeter_osc_broadcast.json"],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sushi_check_accepts_sushis_examples(path: Path):
    result = run_task("sushi-check", str(path), "--os", path.parent.name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: accepted by Sushi {path.parent.name}"
    assert result.stderr == ""


def test_sushi_check_reports_one_line_per_problem():
    path = BAD_CONFIGS / "duplicate-track-names.1.x.json"
    result = run_task("sushi-check", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"elkbuild: error: {path}: Sushi 1.x would refuse it "
                               "(assumed Sushi 1.x: tracks[0] has \"channels\"")
    assert lines[0].endswith("3 problems")
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "tracks[1].name", "midi.track_connections[0].track",
        "midi.program_change_connections[0].plugin"]


def test_sushi_check_invalid_json_is_one_line():
    path = BAD_CONFIGS / "trailing-comma.1.x.json"
    assert_one_line_error(run_task("sushi-check", str(path)), f"{path}:6:36: invalid JSON")


def test_sushi_check_json_output_and_exit_code():
    path = BAD_CONFIGS / "vst3-without-uid.1.x.json"
    result = run_task("sushi-check", str(path), "--os", "1.x", "--json")
    assert result.returncode == 1
    verdict = json.loads(result.stdout)
    assert verdict["ok"] is False and verdict["assumed"] is None
    assert verdict["problems"] == ["tracks[0].plugins[1].uid: is required"]


def test_sushi_check_warns_about_keys_sushi_ignores(tmp_path: Path):
    doc = json.loads((EXAMPLES / "0.11" / "config_fx.json").read_text())
    doc["initial_state"] = [{"processor": "main", "bypassed": True}]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    result = run_task("sushi-check", str(path))
    assert result.returncode == 0
    assert result.stderr.strip() == (f"elkbuild: warning: {path}: initial_state: is a Sushi 1.x "
                                     "feature; Sushi 0.11 ignores it")


def test_sushi_check_warns_when_the_file_looks_like_the_other_version():
    path = EXAMPLES / "0.11" / "config_fx.json"
    result = run_task("sushi-check", str(path), "--os", "1.x")
    assert result.returncode == 1
    assert (f"elkbuild: warning: {path}: it looks written for Sushi 0.11 (tracks[0] has "
            "\"mode\")") in result.stderr
