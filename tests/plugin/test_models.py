"""Example models and the model readers: shapes read back, bad files give one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from elkbuild.plugin import example_models
from elkbuild.plugin.models import ModelError, read_model


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return example_models.write_examples(tmp_path_factory.mktemp("models"))


def test_shapes_of_the_examples_read_back(models):
    onnx_info = read_model(models["saturator.onnx"])
    assert onnx_info.format == "onnx"
    assert [(t.name, t.shape, t.dtype) for t in onnx_info.inputs] == [("audio", (1, 64), "float32")]
    assert [(t.name, t.shape) for t in onnx_info.outputs] == [("saturated", (1, 64))]
    tflite_info = read_model(models["classifier.tflite"])
    assert tflite_info.format == "tflite"
    assert [(t.name, t.shape, t.dtype) for t in tflite_info.inputs] == [("features", (1, 8), "float32")]
    assert [(t.name, t.shape, t.elements) for t in tflite_info.outputs] == [("probabilities", (1, 4), 4)]


def test_examples_are_byte_identical_when_made_again(models):
    assert example_models.saturator_onnx_bytes() == models["saturator.onnx"].read_bytes()
    assert example_models.classifier_tflite_bytes() == models["classifier.tflite"].read_bytes()
    assert example_models.saturator_onnx_bytes(seed=1) != models["saturator.onnx"].read_bytes()


def test_onnx_saturator_in_onnxruntime_matches_its_formula(models):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(models["saturator.onnx"]),
                                           providers=["CPUExecutionProvider"])
    x = np.random.default_rng(3).uniform(-1.5, 1.5, size=(1, 64)).astype(np.float32)
    y = session.run(None, {"audio": x})[0]
    expected = example_models.saturator_weights().apply(x)
    assert np.max(np.abs(y - expected)) < 1e-5
    # It saturates: odd-ish, bounded, compressing large inputs.
    assert np.all(np.abs(y) < 1.0)
    assert np.abs(y).max() < np.abs(x).max()


def test_tflite_classifier_loads_in_litert_and_matches_its_formula(models):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(models["classifier.tflite"]))
    interpreter.allocate_tensors()
    detail_in = interpreter.get_input_details()[0]
    detail_out = interpreter.get_output_details()[0]
    for seed in range(3):
        x = np.random.default_rng(seed).normal(size=(1, 8)).astype(np.float32)
        interpreter.set_tensor(detail_in["index"], x)
        interpreter.invoke()
        p = interpreter.get_tensor(detail_out["index"])
        assert p.shape == (1, 4)
        assert abs(float(p.sum()) - 1.0) < 1e-5
        assert np.max(np.abs(p - example_models.classifier_weights().apply(x))) < 1e-5


def test_constant_tensors_are_16_byte_aligned_in_the_flatbuffer(models):
    import tflite

    data = models["classifier.tflite"].read_bytes()
    model = tflite.Model.GetRootAs(data, 0)
    for i in range(1, model.BuffersLength()):
        buffer = model.Buffers(i)
        assert buffer.DataLength() > 0
        # The vector's first byte: the table's offset to the vector plus 4 (length prefix).
        start = buffer._tab.Vector(buffer._tab.Offset(4))
        assert start % 16 == 0


def test_reference_outputs_come_from_the_runtimes(models):
    onnx_ref = example_models.reference_outputs(models["saturator.onnx"])
    assert onnx_ref["engine"].startswith("onnxruntime")
    assert onnx_ref["input_shape"] == [1, 64] and len(onnx_ref["output"]) == 64
    expected = example_models.saturator_weights().apply(np.array(onnx_ref["input"]))
    assert np.max(np.abs(np.array(onnx_ref["output"]) - expected)) < 1e-5
    tflite_ref = example_models.reference_outputs(models["classifier.tflite"])
    assert tflite_ref["output_shape"] == [1, 4]
    assert abs(sum(tflite_ref["output"]) - 1.0) < 1e-5


def _one_line(error: ModelError) -> str:
    text = error.one_line()
    assert "\n" not in text
    return text


@pytest.mark.parametrize("name,content,expected", [
    ("junk.onnx", b"this is not protobuf \xff\xfe" * 8, "is not a readable ONNX model"),
    ("empty.onnx", b"", "is empty"),
    ("text.tflite", b"not a flatbuffer at all", "no 'TFL3' file identifier"),
    ("model.pt", b"\x80\x02", "unknown model type '.pt'"),
])
def test_bad_model_files_give_one_line_errors(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ModelError) as caught:
        read_model(path)
    text = _one_line(caught.value)
    assert text.startswith(str(path))
    assert expected in text
    assert "hint:" in text


def test_truncated_tflite_names_the_damage(tmp_path, models):
    path = tmp_path / "cut.tflite"
    path.write_bytes(models["classifier.tflite"].read_bytes()[:400])
    with pytest.raises(ModelError, match="damaged TFLite flatbuffer") as caught:
        read_model(path)
    assert caught.value.path == str(path)


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelError, match="no such file"):
        read_model(tmp_path / "absent.onnx")


def test_dynamic_dimensions_are_read_as_unknown(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Tanh", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "n"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "n"])])
    path = tmp_path / "dynamic.onnx"
    onnx.save(helper.make_model(graph), str(path))
    info = read_model(path)
    assert info.inputs[0].shape == (None, None)
    assert info.inputs[0].fixed_shape == (1, None)
    assert not info.inputs[0].is_fixed
