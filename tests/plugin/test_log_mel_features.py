"""`new-plugin --features log-mel`: a classifier whose input is log-mel frames gets a
`features:` block in plugin.yaml (bands and frames from the input's shape, the rest
from flags, guesses said), its constants in ModelSpec.h, and refusals in one line
naming the tensor, the reason and the flag."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from elkbuild.errors import ConfigError, UsageError
from elkbuild.plugin import example_models
from elkbuild.plugin.features import FeatureFlags
from elkbuild.plugin.project import load_project
from elkbuild.plugin.render import NewPlugin, new_plugin

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "tests" / "runtime" / "models" / "mel_detector.onnx"
SETTINGS = json.loads(MODEL.with_name("mel_detector.features.json").read_text())


def _request(**flags) -> NewPlugin:
    return NewPlugin("Mel", "onnx", "classifier", MODEL, features=FeatureFlags(features="log-mel", **flags))


def test_features_come_from_the_shape_and_the_flags_and_guesses_are_said(tmp_path):
    said: list[str] = []
    project = new_plugin(_request(every=4, max_hz=8000.0), tmp_path, say=said.append)
    f = project.features
    assert (f.input, f.mel_bands, f.frames, f.every, f.max_hz) == ("log_mel", 32, 16, 4, 8000.0)
    assert (f.sample_rate, f.fft_size, f.hop) == (16000, 512, 160)   # the guesses
    assert any("32 mel bands (axis 1) x 16 frames (axis 2)" in line for line in said), said
    assert any("guessed --sample-rate 16000 --fft-size 512 --hop 160" in line for line in said), said
    data = yaml.safe_load((project.root / "plugin.yaml").read_text())
    assert data["features"]["type"] == "log-mel" and data["features"]["hop"] == 160
    spec = (project.root / "Source" / "ModelSpec.h").read_text()
    assert "constexpr int melBands = 32;" in spec and "constexpr int every = 4;" in spec
    assert "s.maxHz = 8000.0;" in spec and "elkrt::FeatureLog::Decibel" in spec
    processor = (project.root / "Source" / "PluginProcessor.cpp").read_text()
    assert "analyseFrames" in processor and "detectOnsets" not in processor

    # Rendered again without flags, the features are kept; a flag changes one of them.
    again = new_plugin(NewPlugin("Mel", "onnx", "classifier", MODEL,
                                 features=FeatureFlags(hop=128, features="log-mel")), tmp_path, force=True)
    assert (again.features.hop, again.features.every, again.features.max_hz) == (128, 4, 8000.0)
    kept = new_plugin(NewPlugin("Mel", "onnx", "classifier", MODEL), tmp_path, force=True)
    assert kept.features == again.features


@pytest.mark.parametrize("flags,error,expected", [
    ({"mel_bands": 64}, UsageError, "input 'log_mel' [1, 32, 16]: --mel-bands 64 but the model takes 32"),
    ({"frames": 8}, UsageError, "input 'log_mel' [1, 32, 16]: --frames 8 but the model takes 16"),
    ({"hop": 1024}, UsageError, "input 'log_mel' [1, 32, 16]: --hop 1024 must be 1..fft_size (512)"),
    ({"fft_size": 500}, UsageError, "--fft-size 500 must be a power of two"),
    ({"max_hz": 9000.0}, UsageError, "--max-hz 9000.0 must be 0 (half the rate) .. 8000 Hz"),
    ({"scale": "bark"}, UsageError, "--mel-scale 'bark' must be slaney or htk"),
])
def test_bad_settings_are_refused_naming_the_tensor_and_flag(tmp_path, flags, error, expected):
    with pytest.raises(error) as caught:
        new_plugin(_request(**flags), tmp_path)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "Mel").exists()


def test_an_input_that_is_not_mel_frames_is_refused(tmp_path):
    models = example_models.write_examples(tmp_path / "models")
    with pytest.raises(UsageError, match=r"input '\w+' \[1, \d+\]: log-mel features need \[1, mel_bands, frames\]"):
        new_plugin(NewPlugin("Hits", "tflite", "classifier", models["classifier.tflite"],
                             features=FeatureFlags(features="log-mel")), tmp_path)
    with pytest.raises(UsageError, match="--features is for --kind classifier, not effect"):
        new_plugin(NewPlugin("Fuzz", "onnx", "effect", models["saturator.onnx"],
                             features=FeatureFlags(features="log-mel")), tmp_path)
    with pytest.raises(UsageError, match="--hop describes log-mel features"):
        new_plugin(NewPlugin("Mel", "onnx", "classifier", MODEL, features=FeatureFlags(hop=160)), tmp_path)


def test_a_bad_features_block_in_plugin_yaml_names_its_key(tmp_path):
    project = new_plugin(_request(), tmp_path)
    source = project.root / "plugin.yaml"
    source.write_text(source.read_text().replace("hop: 160", "hop: 0"))
    with pytest.raises(ConfigError, match=r"plugin.yaml: features.hop is 0; must be 1..fft_size \(512\)"):
        load_project(project.root)


def test_the_task_takes_the_flags_and_refuses_in_one_line(tmp_path):
    def invoke(*args: str) -> subprocess.CompletedProcess:
        (tmp_path / "elkbuild.yaml").touch()
        return subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(REPO), "new-plugin", "Mel",
                               "--engine", "onnx", "--kind", "classifier", "--model", str(MODEL), *args],
                              capture_output=True, text=True, cwd=tmp_path,
                              env={"ELKBUILD_PROJECT_DIR": str(tmp_path), "PATH": "/usr/bin:/bin",
                                   "HOME": str(tmp_path)})

    bad = invoke("--features", "log-mel", "--mel-bands", "40")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "input 'log_mel' [1, 32, 16]: --mel-bands 40" in bad.stderr and "Traceback" not in bad.stderr
    ok = invoke("--features", "log-mel", "--sample-rate", str(SETTINGS["sample_rate"]),
                "--fft-size", str(SETTINGS["fft_size"]), "--hop", str(SETTINGS["hop"]),
                "--every", str(SETTINGS["every"]), "--max-hz", str(SETTINGS["max_hz"]))
    assert ok.returncode == 0, ok.stderr
    assert "log-mel features, 32 mel bands" in ok.stdout and "guessed" not in ok.stdout
    assert "(classifier, onnx, model mel_detector.onnx, log-mel 32 x 16 every 4 frames)" in ok.stdout
    features = load_project(tmp_path / "plugins" / "Mel").features
    assert (features.every, features.max_hz) == (SETTINGS["every"], SETTINGS["max_hz"])
