"""Rigs render to the JSON each Sushi version reads; golden files pin the result."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sushi_helpers import BAD_RIGS, GOLDEN, REPO, RIGS, make_project, project_config

from elkbuild.config import Config, load_config
from elkbuild.errors import ConfigError, SushiConfigError, UsageError, ValidationFailed
from elkbuild.sushi import VERSIONS, check_document, render_rig, render_rigs, write_config
from elkbuild.sushi.render import dumps, find_rigs, rendered_path

EXAMPLE_RIGS = sorted((REPO / "sushi-configs").glob("*.yaml"))
UPDATE = os.environ.get("ELKBUILD_UPDATE_GOLDEN") == "1"


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    """A throw-away project with this repo's rigs and plugin identities."""
    return project_config(make_project(tmp_path / "project"))


@pytest.fixture
def repo_cfg(tmp_path: Path) -> Config:
    """The configuration of this repository itself (its elkbuild.yaml, if any)."""
    return load_config(REPO, env={"ELKBUILD_USER_CONFIG": str(tmp_path / "none.yaml")})


def test_the_three_example_rigs_exist():
    assert {p.stem for p in EXAMPLE_RIGS} >= {"neural-mono", "stereo-chain", "multi-track-midi"}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("rig", EXAMPLE_RIGS, ids=lambda p: p.stem)
def test_example_rig_renders_to_its_committed_json(rig: Path, version: str,
                                                   repo_cfg: Config):
    doc = render_rig(repo_cfg, rig, version)
    assert check_document(doc, version).ok
    golden = rendered_path(repo_cfg, rig, version)
    if UPDATE:
        golden.write_text(dumps(doc), encoding="utf-8")
    assert golden.read_text(encoding="utf-8") == dumps(doc), \
        f"{golden} is stale: run `invoke sushi-config --os all`"


@pytest.mark.parametrize("rig,version", [("full-feature", "1.x"), ("names-with-quotes", "1.x"),
                                         ("names-with-quotes", "0.11")])
def test_test_rig_matches_golden(rig: str, version: str, cfg: Config):
    doc = render_rig(cfg, RIGS / f"{rig}.yaml", version)
    golden = GOLDEN / f"{rig}.{version}.json"
    if UPDATE:
        golden.write_text(dumps(doc), encoding="utf-8")
    assert golden.read_text(encoding="utf-8") == dumps(doc)


def test_same_rig_gives_each_version_its_track_format(cfg: Config):
    rig = cfg.root / "sushi-configs" / "multi-track-midi.yaml"
    old, new = render_rig(cfg, rig, "0.11"), render_rig(cfg, rig, "1.x")
    assert [(t["name"], t["mode"]) for t in old["tracks"]] == [("guitar", "mono"),
                                                                ("synth", "stereo")]
    assert [(t["name"], t["channels"]) for t in new["tracks"]] == [("guitar", 1), ("synth", 2)]
    assert all("channels" not in t for t in old["tracks"])
    assert all("mode" not in t for t in new["tracks"])
    assert old["midi"] == new["midi"]


def test_multibus_track_in_both_formats(tmp_path: Path, cfg: Config):
    rig = tmp_path / "bus.yaml"
    rig.write_text("tracks:\n"
                   "  - {name: wide, buses: 3, outputs: [{engine_bus: 2, track_bus: 2}]}\n")
    assert render_rig(cfg, rig, "0.11")["tracks"][0] == {
        "name": "wide", "mode": "multibus", "input_busses": 3, "output_busses": 3,
        "inputs": [], "outputs": [{"engine_bus": 2, "track_bus": 2}], "plugins": []}
    assert render_rig(cfg, rig, "1.x")["tracks"][0] == {
        "name": "wide", "multibus": True, "buses": 3, "inputs": [],
        "outputs": [{"engine_bus": 2, "track_bus": 2}], "plugins": []}


def test_project_plugin_resolves_to_the_install_dir_and_class_name(cfg: Config):
    doc = render_rig(cfg, cfg.root / "sushi-configs" / "neural-mono.yaml", "1.x")
    assert doc["tracks"][0]["plugins"] == [{
        "name": "NeuralSaturator", "type": "vst3x", "uid": "NeuralSaturator",
        "path": "/home/mind/plugins/NeuralSaturator.vst3"}]


def test_install_dir_and_class_name_come_from_configuration(tmp_path: Path):
    root = make_project(tmp_path / "p", "project:\n  plugin_install_dir: /udata/plugins\n")
    identity = root / "plugins" / "NeuralSaturator" / "plugin.yaml"
    identity.write_text(identity.read_text().replace("vst3_class_name: NeuralSaturator",
                                                     "vst3_class_name: Neural Saturator Pro"))
    cfg = project_config(root)
    rig = root / "sushi-configs" / "neural-mono.yaml"
    plugin = render_rig(cfg, rig, "0.11")["tracks"][0]["plugins"][0]
    assert plugin["path"] == "/udata/plugins/NeuralSaturator.vst3"
    assert plugin["uid"] == "Neural Saturator Pro"
    board_dir = render_rig(cfg, rig, "1.x", plugin_dir="/home/mind/vst")["tracks"][0]["plugins"]
    assert board_dir[0]["path"] == "/home/mind/vst/NeuralSaturator.vst3"


def test_initial_state_renders_for_1x_only(cfg: Config):
    rig = BAD_RIGS / "state-on-0.11.yaml"
    doc = render_rig(cfg, rig, "1.x")
    assert doc["initial_state"] == [{"processor": "NeuralSaturator",
                                     "parameters": {"drive": 0.5}}]
    with pytest.raises(SushiConfigError) as caught:
        render_rig(cfg, rig, "0.11")
    assert caught.value.key == "tracks[0].plugins[0].parameters"
    assert str(rig) in caught.value.one_line()


@pytest.mark.parametrize("feature,key", [
    ("pre_track: {name: pre, plugins: []}\n", "pre_track"),
    ("post_track: {name: post, plugins: []}\n", "post_track"),
    ("midi: {clock_output: [0]}\n", "midi.clock_output"),
    ("host: {master_limiter: true}\n", "host.master_limiter"),
    ("host: {rt_midi_inputs: [{device: 0, port: 0}]}\n", "host.rt_midi_inputs"),
])
def test_1x_features_are_errors_on_0_11_never_dropped(feature: str, key: str, tmp_path: Path,
                                                       cfg: Config):
    rig = tmp_path / "rig.yaml"
    rig.write_text("tracks:\n  - {name: main, channels: 2, bypassed: false}\n" + feature)
    # `bypassed` is initial state too; check it is caught first, then without it.
    with pytest.raises(SushiConfigError):
        render_rig(cfg, rig, "0.11")
    rig.write_text("tracks:\n  - {name: main, channels: 2}\n" + feature)
    assert check_document(render_rig(cfg, rig, "1.x"), "1.x").ok
    with pytest.raises(SushiConfigError) as caught:
        render_rig(cfg, rig, "0.11")
    assert caught.value.key == key


def test_all_sections_render_and_validate(cfg: Config):
    doc = render_rig(cfg, RIGS / "full-feature.yaml", "1.x")
    assert list(doc) == ["host_config", "pre_track", "tracks", "post_track", "midi", "osc",
                         "cv_control", "events", "initial_state"]
    assert {p["type"] for t in doc["tracks"] for p in t["plugins"]} == {
        "internal", "vst2x", "vst3x", "lv2"}
    assert set(doc["midi"]) == {"track_connections", "track_out_connections",
                                "program_change_connections", "cc_mappings", "clock_output"}
    assert [g["mode"] for g in doc["cv_control"]["gate_inputs"]] == ["note_event", "sync"]
    assert [e["type"] for e in doc["events"]] == ["parameter_change", "property_change",
                                                  "note_on", "note_off"]
    assert {s["processor"] for s in doc["initial_state"]} == {
        "pregain", "voice", "NeuralSaturator", "old-vst", "sampler"}


# --------------------------------------------------------------------------- writing

def test_write_config_is_atomic_and_refuses_invalid(tmp_path: Path, cfg: Config):
    dest = tmp_path / "out" / "rig.json"
    doc = render_rig(cfg, cfg.root / "sushi-configs" / "stereo-chain.yaml", "1.x")
    assert write_config(doc, dest, "1.x") is True
    assert json.loads(dest.read_text()) == doc
    assert write_config(doc, dest, "1.x") is False  # same text: untouched
    before = dest.read_bytes()
    broken = json.loads(json.dumps(doc))
    broken["tracks"][0]["plugins"][0]["name"] = "main"
    with pytest.raises(ValidationFailed) as caught:
        write_config(broken, dest, "1.x")
    assert caught.value.problems[0].startswith("tracks[0].plugins[0].name:")
    assert dest.read_bytes() == before
    assert sorted(p.name for p in dest.parent.iterdir()) == ["rig.json"]  # no temp files


def test_render_rigs_writes_nothing_when_one_rig_fails(tmp_path: Path, cfg: Config):
    bad = cfg.root / "sushi-configs" / "zz-broken.yaml"
    bad.write_text("tracks:\n  - {name: main, channels: 2, plugins: [{name: x, uid: nope}]}\n")
    with pytest.raises(SushiConfigError):
        render_rigs(cfg, [], ["1.x"])
    assert not (cfg.root / "sushi-configs" / "rendered").exists()
    bad.unlink()
    results = render_rigs(cfg, [], list(VERSIONS))
    assert len(results) == 2 * len(EXAMPLE_RIGS) and all(r.changed for r in results)
    again = render_rigs(cfg, [], list(VERSIONS), check_only=True)
    assert all(r.up_to_date and not r.changed for r in again)


def test_rig_lookup_by_name_and_path(cfg: Config):
    by_name = find_rigs(cfg, ["neural-mono"])
    assert by_name == [cfg.root / "sushi-configs" / "neural-mono.yaml"]
    assert find_rigs(cfg, [str(by_name[0])]) == by_name
    with pytest.raises(UsageError, match="known: multi-track-midi, neural-mono, stereo-chain"):
        find_rigs(cfg, ["neural-mon"])


def test_out_needs_one_rig_and_one_version(cfg: Config, tmp_path: Path):
    with pytest.raises(UsageError, match="--out"):
        render_rigs(cfg, ["neural-mono"], list(VERSIONS), tmp_path / "x.json")


def test_bad_identity_file_is_reported_with_its_key(tmp_path: Path):
    root = make_project(tmp_path / "p")
    identity = root / "plugins" / "NeuralSaturator" / "plugin.yaml"
    identity.write_text(identity.read_text().replace("plugin_code: Nsat", "plugin_code: nsat"))
    with pytest.raises(ConfigError) as caught:
        render_rig(project_config(root), root / "sushi-configs" / "neural-mono.yaml", "1.x")
    assert caught.value.source == str(identity) and caught.value.key == "plugin_code"


def test_rig_reference_in_the_readme_is_a_valid_rig(tmp_path: Path, cfg: Config):
    """sushi-configs/README.md lists every rig key; it must stay a rig that renders."""
    text = (REPO / "sushi-configs" / "README.md").read_text(encoding="utf-8")
    block = text.split("```yaml\n")[1].split("```")[0].replace("plugins: [...]", "plugins: []")
    rig = tmp_path / "reference.yaml"
    rig.write_text(block, encoding="utf-8")
    doc = render_rig(cfg, rig, "1.x")
    assert check_document(doc, "1.x").ok
    assert {"pre_track", "post_track", "midi", "osc", "cv_control", "events",
            "initial_state"} <= set(doc)
    with pytest.raises(SushiConfigError):
        render_rig(cfg, rig, "0.11")
