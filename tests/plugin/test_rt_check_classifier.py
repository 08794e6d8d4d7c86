"""The classifier template is real-time safe end to end: its audio thread only
detects onsets and hands features over lock-free queues, the engine runs on the
worker. Rendered from an ONNX classifier made here, built natively with the
patched JUCE, checked by rt-check (strict: engine calls count too)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from native_fixtures import require_native_build_tools

from elkbuild.config import load_config
from elkbuild.executor import LocalExecutor
from elkbuild.plugin.native_build import build_native
from elkbuild.plugin.render import NewPlugin, new_plugin
from elkbuild.vst3host.rt_check import format_report, rt_check

REPO = Path(__file__).resolve().parents[2]
FEATURES, CLASSES = 16, 4

pytestmark = pytest.mark.slow


def _onnx_classifier(path: Path) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    weights = numpy_helper.from_array(rng.normal(0, 0.5, (FEATURES, CLASSES)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["features", "w"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["scores"], axis=-1)], "classifier",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, FEATURES])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, CLASSES])], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def test_onnx_classifier_makes_no_unsafe_call_on_the_audio_thread(host_dir: Path, tmp_path: Path):
    require_native_build_tools()
    model = _onnx_classifier(tmp_path / "models" / "onsets.onnx")
    project = new_plugin(NewPlugin("RtOnsets", "onnx", "classifier", model), tmp_path / "plugins")
    cache = load_config(REPO).cache_dir
    build = build_native(project.root, LocalExecutor(), cache, cache / "test-builds", jobs=2)
    report = rt_check(build.bundle, LocalExecutor(), host_dir, blocks=5000, block=64)
    print(format_report(report))
    assert report.process_failures == 0
    assert report.unsafe == 0, format_report(report)
    assert report.passes() and "PASS" in format_report(report)
    assert report.p99_us < report.deadline_us
