"""The deploy gate's model rule (elkbuild.bundle.abi_gate): a bundle whose plugin
could not load its model (roles without the model, an ONNX model without its
external data file) is refused, since Sushi would run it silently refusing to
activate. Pure file checks on a bundle's Resources (~1 s)."""

from __future__ import annotations

import shutil
from pathlib import Path

from elkbuild.bundle.abi_gate import _model_problems
from elkbuild.bundle.layout import BundleLayout

MODELS = Path(__file__).resolve().parents[1] / "runtime" / "models"


def _bundle(tmp_path: Path, *files: str) -> BundleLayout:
    """A bundle's Resources with the WaveNet example's roles (as <model>.roles) and `files`."""
    layout = BundleLayout(tmp_path / "WaveNetAmp.vst3")
    layout.resources.mkdir(parents=True)
    shutil.copyfile(MODELS / "wavenet.roles", layout.resources / "wavenet.onnx.roles")
    for name in files:
        shutil.copyfile(MODELS / name, layout.resources / name)
    return layout


def test_a_complete_bundle_has_no_model_problem(tmp_path):
    assert _model_problems(_bundle(tmp_path, "wavenet.onnx", "wavenet.onnx.data")) == []


def test_a_model_without_its_external_data_is_a_problem(tmp_path):
    (problem,) = _model_problems(_bundle(tmp_path, "wavenet.onnx"))
    assert problem.rule == "model" and problem.file == "Contents/Resources/wavenet.onnx"
    assert "keeps its data in wavenet.onnx.data" in problem.message
    assert "the plugin would refuse to activate" in problem.message


def test_roles_without_their_model_are_a_problem(tmp_path):
    (problem,) = _model_problems(_bundle(tmp_path))
    assert problem.file == "Contents/Resources/wavenet.onnx.roles" and "describes wavenet.onnx" in problem.message


def test_a_bundle_without_roles_is_not_judged_here(tmp_path):
    """A classifier's bundle carries no roles; its model is the plugin's own business."""
    layout = BundleLayout(tmp_path / "Hits.vst3")
    layout.resources.mkdir(parents=True)
    (layout.resources / "classifier.tflite").write_bytes(b"not checked")
    assert _model_problems(layout) == []
