"""The checker accepts what Sushi accepts and names the JSON path of what it refuses."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest
from jsonschema import Draft4Validator
from conftest import require_real_part
from sushi_helpers import BAD_CONFIGS, EXAMPLES, REPO

from elkbuild.sushi import check_document, check_file, detect_version
from elkbuild.sushi.check import InvalidJson, load_json, raw_schema, schema_problems

def _shared_reference() -> Path | None:
    """Sushi's reference schemas and examples lie in `shared/reference/sushi` beside
    the project's checkout, or beside the checkout this one was cloned from (a clean
    clone for CI)."""
    roots = [REPO]
    origin = subprocess.run(["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],
                            capture_output=True, text=True).stdout.strip()
    if origin and Path(origin).is_dir():
        roots.append(Path(origin).resolve())
    for root in roots:
        folder = root.parent / "shared" / "reference" / "sushi"
        if folder.is_dir():
            return folder
    return None


SHARED_EXAMPLES = _shared_reference()
EXAMPLE_FILES = sorted(EXAMPLES.glob("*/*.json"))


def _example(version: str, name: str) -> dict:
    return json.loads((EXAMPLES / version / name).read_text())


# --------------------------------------------------------------------------- Sushi's examples

def test_example_fixtures_are_there():
    assert {p.parent.name for p in EXAMPLE_FILES} == {"0.11", "1.x"}
    assert len(EXAMPLE_FILES) >= 9


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sushi_examples_are_accepted_for_their_version(path: Path):
    verdict = check_file(path, path.parent.name)
    assert verdict.ok, verdict.report.problems
    assert verdict.report.warnings == []


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_version_of_sushi_examples_is_detected(path: Path):
    verdict = check_file(path)
    assert verdict.version == path.parent.name
    assert verdict.assumed  # says why it chose that version
    assert verdict.ok


def test_fixture_copies_match_the_shared_reference():
    """The copies in tests/sushi/examples are the reference files, byte for byte."""
    require_real_part(SHARED_EXAMPLES is not None, "Sushi's reference (shared/reference/sushi)",
                      "check the project out beside it")
    shared = sorted(SHARED_EXAMPLES.glob("*/examples/*.json"))
    assert shared
    for original in shared:
        copy_ = EXAMPLES / original.parent.parent.name / original.name
        assert copy_.read_bytes() == original.read_bytes(), copy_


def test_shipped_schemas_are_sushis():
    require_real_part(SHARED_EXAMPLES is not None, "Sushi's reference (shared/reference/sushi)",
                      "check the project out beside it")
    for original in SHARED_EXAMPLES.glob("*/schemas/*.json"):
        version = original.parent.parent.name
        assert raw_schema(version, original.name) == json.loads(original.read_text())


# --------------------------------------------------------------------------- the state quirk

def test_state_schema_quirk_is_real_for_a_standard_validator():
    """Plain draft-04 rejects Sushi's own example: `processor` is not a declared property."""
    doc = _example("1.x", "arp_peakmeter_osc_broadcast.json")
    errors = list(Draft4Validator(raw_schema("1.x", "state_schema.json")).iter_errors(doc))
    assert [e.validator for e in errors] == ["additionalProperties"]
    assert schema_problems(doc, "1.x") == []


def test_state_needs_processor_as_sushi_reads_it():
    doc = _example("1.x", "arp_peakmeter_osc_broadcast.json")
    state = doc["initial_state"][0]
    state["processor_name"] = state.pop("processor")
    assert check_document(doc, "1.x").problems == ["initial_state[0].processor: is required"]


def test_state_still_refuses_unknown_keys():
    doc = _example("1.x", "arp_peakmeter_osc_broadcast.json")
    doc["initial_state"][0]["volume"] = 0.5
    problems = check_document(doc, "1.x").problems
    assert len(problems) == 1 and problems[0].startswith("initial_state[0].volume: is not allowed")


# --------------------------------------------------------------------------- bad configs

# file -> (version, the first words of the problem line that must be reported)
BAD = {
    "vst3-without-uid.1.x.json": "tracks[0].plugins[1].uid: is required",
    "unknown-plugin-type.1.x.json": 'tracks[0].plugins[1].type: must be one of "internal"',
    "track-without-channels.1.x.json": "tracks[1].channels: is required (or instead: multibus",
    "float-samplerate.1.x.json": "host_config.samplerate: must be a whole number",
    "misspelt-host-key.1.x.json": "host_config.sample_rate: is not allowed here",
    "plugin-named-like-track.1.x.json": 'tracks[0].plugins[0].name: "main" is already the name',
    "duplicate-track-names.1.x.json": 'tracks[1].name: "guitar" is already the name of tracks[0]',
    "cc-to-unknown-plugin.1.x.json": "midi.cc_mappings[0].plugin_name: names no track or plugin",
    "program-change-to-unknown-plugin.1.x.json":
        "midi.program_change_connections[0].plugin: names no track or plugin",
    "event-for-unknown-plugin.1.x.json": "events[0].data.plugin_name: names no track or plugin",
    "state-for-unknown-processor.1.x.json": "initial_state[0].processor: names no track or plugin",
    "state-parameter-above-one.1.x.json": "initial_state[0].parameters.gain: must be at most 1.0",
    "osc-with-both-forms.1.x.json": "osc: must have only one of",
    "osc-for-unknown-processor.1.x.json":
        "osc.enabled_processor_outputs[0].processor: names no track or plugin",
    "cv-to-unknown-processor.1.x.json": "cv_control.cv_inputs[1].processor: names no track",
    "midi-channel-16.1.x.json": "midi.track_connections[0].channel: must be at most 15",
    "midi-to-a-plugin-not-a-track.1.x.json": 'midi.track_connections[0].track: names no track of',
    "unknown-internal-uid.1.x.json":
        'tracks[0].plugins[2].uid: "sushi.testing.peak_meter" is not an internal plugin',
    "note-event-with-parameter-data.1.x.json": "events[0].data.note: is required",
    "state-with-processor-name-only.1.x.json": "initial_state[0].processor: is required",
    "bus-input-without-track-bus.1.x.json": "tracks[0].inputs[0].track_bus: is required",
    "gate-without-mode.1.x.json": "cv_control.gate_inputs[0].mode: is required",
    "no-host-config.1.x.json": "host_config: is required",
    "no-tracks.1.x.json": "tracks: is required",
    "top-level-list.1.x.json": "(top level): must be a JSON object",
    "multibus-false-without-channels.1.x.json":
        'tracks[1].channels: is required when "multibus" is false',
    "quad-mode.0.11.json": 'tracks[0].mode: must be one of "mono", "stereo", "multibus"',
    "track-without-outputs.0.11.json": "tracks[1].outputs: is required: Sushi 0.11 reads it",
    "multibus-without-busses.0.11.json": 'tracks[0].input_busses: is required when "mode"',
    "empty-tracks.0.11.json": "tracks: needs at least 1 entry",
    "internal-uid-of-1x-only.0.11.json":
        'tracks[0].plugins[2].uid: "sushi.testing.send" is not an internal plugin of Sushi 0.11',
    "plugin-without-name.0.11.json": "tracks[1].plugins[0].name: is required",
}


def test_every_bad_config_has_an_expectation():
    on_disk = {p.name for p in BAD_CONFIGS.glob("*.json")} - {"trailing-comma.1.x.json"}
    assert on_disk == set(BAD)
    assert len(BAD) >= 15


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_config_is_refused_naming_the_json_path(name: str):
    version = "0.11" if name.endswith(".0.11.json") else "1.x"
    verdict = check_file(BAD_CONFIGS / name, version)
    assert not verdict.ok
    assert any(p.startswith(BAD[name]) for p in verdict.report.problems), \
        verdict.report.problems


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_config_problems_are_single_lines(name: str):
    version = "0.11" if name.endswith(".0.11.json") else "1.x"
    for problem in check_file(BAD_CONFIGS / name, version).report.problems:
        assert "\n" not in problem and ": " in problem


def test_invalid_json_names_file_line_and_column():
    path = BAD_CONFIGS / "trailing-comma.1.x.json"
    with pytest.raises(InvalidJson) as caught:
        load_json(path)
    assert caught.value.message.startswith(f"{path}:6:36: invalid JSON")


def test_missing_file_is_one_clear_error(tmp_path: Path):
    with pytest.raises(InvalidJson, match="no such file"):
        load_json(tmp_path / "nope.json")


def test_duplicate_keys_keep_the_first_like_sushi(tmp_path: Path):
    path = tmp_path / "dup.json"
    path.write_text('{"host_config": {"samplerate": 48000, "samplerate": 1.5},'
                    ' "tracks": [{"name": "a", "channels": 2, "inputs": [], "outputs": [],'
                    ' "plugins": []}]}')
    verdict = check_file(path, "1.x")
    assert verdict.ok
    assert verdict.json_warnings == ['key "samplerate" appears twice in one object; '
                                     'Sushi uses the first']


# --------------------------------------------------------------------------- versions

def test_version_detection_by_shape():
    assert detect_version(_example("0.11", "config_fx.json"))[0] == "0.11"
    assert detect_version(_example("1.x", "fx.json"))[0] == "1.x"
    assert detect_version({"tracks": [{"name": "a", "multibus": True}]})[0] == "1.x"
    version, reason = detect_version({"host_config": {"samplerate": 48000}})
    assert version == "1.x" and "nothing" in reason


def test_a_1x_config_is_refused_by_0_11_and_the_reverse():
    one = _example("1.x", "fx.json")
    old = _example("0.11", "config_fx.json")
    assert "tracks[0].mode: is required" in check_document(one, "0.11").problems
    assert any(p.startswith("tracks[0].channels: is required")
               for p in check_document(old, "1.x").problems)


def test_1x_only_sections_are_reported_as_ignored_by_0_11():
    doc = _example("0.11", "config_fx.json")
    doc["initial_state"] = [{"processor": "main", "bypassed": True}]
    doc["future"] = {}
    report = check_document(doc, "0.11")
    assert report.ok  # Sushi 0.11 starts: it never reads these keys
    assert report.warnings == ["future: is not a Sushi section; Sushi ignores it",
                               "initial_state: is a Sushi 1.x feature; Sushi 0.11 ignores it"]


def test_pre_and_post_tracks_share_the_name_space():
    doc = _example("1.x", "prepost_tracks.json")
    assert check_document(doc, "1.x").ok
    broken = copy.deepcopy(doc)
    broken["post_track"]["plugins"][0]["name"] = "pregain"
    assert check_document(broken, "1.x").problems == [
        'post_track.plugins[0].name: "pregain" is already the name of pre_track.plugins[0]; '
        "Sushi needs every track and plugin name to be unique"]
