"""new-plugin's tensor roles (elkbuild.plugin.roles): what it infers from real model
shapes, and a one-line refusal naming the tensor and the deciding flag for every
model it cannot take. Small ONNX models are made here with onnx's helper API; no
build, no inference (~1 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from elkbuild.errors import UsageError
from elkbuild.plugin.models import read_model
from elkbuild.plugin.roles import (RoleError, RoleFlags, assign_roles, parse_role_flags,
                                   roles_from_yaml, roles_text, roles_to_yaml)

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "tests" / "runtime" / "models"


def _model(path: Path, inputs: dict, outputs: dict) -> Path:
    """A graph of Identity/Cast-free nodes is enough: only the signature is read.
    inputs/outputs: name -> (type, shape)."""
    import onnx
    from onnx import TensorProto, helper

    def info(name, spec):
        kind, shape = spec
        return helper.make_tensor_value_info(name, getattr(TensorProto, kind), shape)

    nodes = [helper.make_node("Constant", [], [name], value=helper.make_tensor(
        name + "_v", getattr(TensorProto, spec[0]), [1], [0])) for name, spec in outputs.items()]
    graph = helper.make_graph(nodes, "g", [info(n, s) for n, s in inputs.items()],
                              [info(n, s) for n, s in outputs.items()])
    onnx.save(helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17)]),
              str(path))   # one onnxruntime can open
    return path


def _roles(tmp_path: Path, inputs: dict, outputs: dict, **flags):
    return assign_roles(read_model(_model(tmp_path / "m.onnx", inputs, outputs)), RoleFlags(**flags))


F = "FLOAT"


# ---- what is inferred ------------------------------------------------------------------

def test_the_runtime_examples_get_the_roles_their_streaming_tests_use():
    lstm = assign_roles(read_model(MODELS / "lstm_amp.onnx"))
    assert [(t.name, t.role, t.state_from) for t in lstm.tensors] == [
        ("x", "audio", None), ("h", "state", "h_out"), ("c", "state", "c_out"),
        ("y", "audio", None), ("h_out", "state", None), ("c_out", "state", None)]
    wavenet = assign_roles(read_model(MODELS / "wavenet.onnx"))
    assert wavenet.frame == 64 and wavenet.receptive_field == 4093
    gru = assign_roles(read_model(MODELS / "gru_frame576.onnx"),
                       RoleFlags(constants={"sample_rate": 48000}, sample_rate=48000))
    assert gru.frame == 576
    assert {t.name: t.role for t in gru.tensors} == {"audio": "audio", "state": "state", "sample_rate": "constant",
                                                     "out": "audio", "state_out": "state", "level": "extra"}
    assert "input sample_rate constant value=48000 shape=1" in roles_text(gru)
    assert "sample_rate 48000" in roles_text(gru)
    tflite = assign_roles(read_model(MODELS / "lstm_cell.tflite"))
    assert [t.role for t in tflite.tensors if t.direction == "input"] == ["audio", "state", "state"]


def test_torch_state_names_pair_up(tmp_path):
    roles = _roles(tmp_path, {"x": (F, [1, 64, 1]), "h0": (F, [1, 1, 8]), "c0": (F, [1, 1, 8])},
                   {"y": (F, [1, 64, 1]), "hn": (F, [1, 1, 8]), "cn": (F, [1, 1, 8])})
    assert {t.name: t.state_from for t in roles.tensors if t.role == "state" and t.direction == "input"} == \
        {"h0": "hn", "c0": "cn"}
    numbered = _roles(tmp_path, {"x": (F, [1, 64]), "state1": (F, [1, 4]), "state2": (F, [1, 6])},
                      {"y": (F, [1, 64]), "state_out1": (F, [1, 4]), "state_out2": (F, [1, 6])})
    assert {t.name: t.state_from for t in numbered.tensors if t.state_from} == \
        {"state1": "state_out1", "state2": "state_out2"}


def test_torch_default_names_are_audio_not_state(tmp_path):
    roles = _roles(tmp_path, {"input": (F, ["batch", "time"])}, {"output": (F, ["batch", "time"])},
                   frame=128)
    assert [(t.name, t.role, t.shape) for t in roles.tensors] == [
        ("input", "audio", (1, 128)), ("output", "audio", (1, 128))]


def _conv(path: Path, out_length: str, dilation: int = 10) -> Path:
    """A real dilated convolution (kernel 3: receptive field 2 * dilation + 1) with a
    dynamic time axis 'T' in and `out_length` out, which onnxruntime can run."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.full((1, 1, 3), 0.5, np.float32), "w")
    conv = helper.make_node("Conv", ["x", "w"], ["y"], dilations=[dilation], kernel_shape=[3])
    graph = helper.make_graph([conv], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, "T"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, out_length])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def test_a_dynamic_time_axis_named_after_the_input_gives_the_frame_out_and_the_past_on_top(tmp_path):
    """torch's exporter names the output's length 'T - K': --frame N means N out, N + K in."""
    wavenet = assign_roles(read_model(MODELS / "wavenet.onnx"), RoleFlags(frame=2048))
    assert (wavenet.audio("input").shape, wavenet.audio("output").shape) == ((1, 1, 6140), (1, 1, 2048))
    assert wavenet.receptive_field == 4093
    assert "output y: dynamic time dimension 2 ('T - 4092') taken as 2048 samples (--frame N to choose)" \
        in wavenet.guesses
    given = assign_roles(read_model(_conv(tmp_path / "c.onnx", "T - 20")), RoleFlags(shapes={"x": (1, 1, 200)}))
    assert given.frame == 180 and given.receptive_field == 21
    too_short = RoleFlags(shapes={"x": (1, 1, 20)})
    with pytest.raises(RoleError, match="its time length 'T - 20' is 0 samples"):
        assign_roles(read_model(tmp_path / "c.onnx"), too_short)


def test_a_time_axis_whose_name_says_nothing_is_measured_by_one_run(tmp_path):
    """torch's older exporter ('T' in, 'T_out' out): one onnxruntime run tells the past;
    an input shorter than the receptive field fails to run, so the probe grows it."""
    from elkbuild.plugin.render import fit_effect

    model = read_model(_conv(tmp_path / "c.onnx", "T_out", dilation=100))
    guessed = assign_roles(model, RoleFlags(frame=128))
    assert guessed.receptive_field == 1, "the name alone says nothing"
    measured = fit_effect(model, RoleFlags(frame=128))
    assert (measured.audio("input").shape, measured.frame, measured.receptive_field) == ((1, 1, 328), 128, 201)
    assert measured.guesses[0] == ("output y: one run of 256 samples gave 56: 200 samples of past context "
                                   "(--shape x=... --shape y=... to change)")
    same = read_model(_conv(tmp_path / "same.onnx", "T_out", dilation=0 + 1))
    assert fit_effect(same, RoleFlags(frame=64)).receptive_field == 3
    # A signature whose graph gives another rank than it declares is refused.
    broken = read_model(_model(tmp_path / "b.onnx", {"x": (F, [1, 1, "T"])}, {"y": (F, [1, 1, "T_out"])}))
    with pytest.raises(RoleError, match="one run gave the shape \\[1\\], not one of 3 dimensions"):
        fit_effect(broken, RoleFlags())


def test_roles_round_trip_through_plugin_yaml():
    roles = assign_roles(read_model(MODELS / "gru_frame576.onnx"), RoleFlags(constants={"sample_rate": 16000}))
    again = roles_from_yaml(roles_to_yaml(roles), "plugin.yaml")
    assert roles_text(again) == roles_text(roles)


# ---- refusals: one line, the tensor, the flag -----------------------------------------

REFUSALS = [
    # 1. an int64 input with no value
    (dict(inputs={"x": (F, [1, 64]), "sample_rate": ("INT64", [1])}, outputs={"y": (F, [1, 64])}),
     {}, "input 'sample_rate' (int64 [1]) is not audio or state", "--constant sample_rate=VALUE"),
    # 2. two float inputs, neither state
    (dict(inputs={"a": (F, [1, 64]), "b": (F, [1, 64])}, outputs={"y": (F, [1, 64])}),
     {}, "inputs a, b could each be the audio input", "--audio-in a"),
    # 3. two outputs of the audio's layout
    (dict(inputs={"x": (F, [1, 64])}, outputs={"y": (F, [1, 64]), "z": (F, [1, 64])}),
     {}, "outputs y, z could each be the audio output", "--audio-out y"),
    # 4. a dynamic dimension that is neither batch nor time
    (dict(inputs={"x": (F, [1, 64]), "h": (F, [1, "hidden"])}, outputs={"y": (F, [1, 64]), "h_out": (F, [1, "hidden"])}),
     {}, "input 'h' [1, ?]: dimension 1 is dynamic", "--shape h=1,N"),
    # 5. two outputs could feed one state input
    (dict(inputs={"x": (F, [1, 64]), "h": (F, [1, 8])}, outputs={"y": (F, [1, 64]), "h_out": (F, [1, 8]), "h_next": (F, [1, 8])}),
     {}, "input 'h': outputs h_out, h_next could each feed it as state", "--state h=h_out"),
    # 6. --state pairing tensors of different shapes
    (dict(inputs={"x": (F, [1, 64]), "s": (F, [1, 8])}, outputs={"y": (F, [1, 64]), "t": (F, [1, 4])}),
     {"states": {"s": "t"}}, "--state s=t: input [1, 8] and output [1, 4] differ in shape", "pair s with an output"),
    # 7. output longer than the input
    (dict(inputs={"x": (F, [1, 32])}, outputs={"y": (F, [1, 64])}),
     {}, "output 'y' gives 64 samples per run but input 'x' takes only 32", "--shape x="),
    # 8. --audio-in naming no input
    (dict(inputs={"x": (F, [1, 64])}, outputs={"y": (F, [1, 64])}),
     {"audio_in": "audio"}, "--audio-in 'audio': the model has no input of that name", "its inputs are x"),
    # 9. a --shape that does not fit the tensor
    (dict(inputs={"x": (F, [1, "n"])}, outputs={"y": (F, [1, "n"])}),
     {"shapes": {"x": (1, 64, 1)}}, "input 'x' has the shape [1, ?]; --shape x=1,64,1 does not fit it", "--shape x="),
    # 10. two axes of the same length: time cannot be told
    (dict(inputs={"x": (F, [1, 64, 64])}, outputs={"y": (F, [1, 64, 64])}),
     {}, "input 'x' [1, 64, 64]: axes [1, 2] are equally long", "--shape x="),
    # 11. in and out channels differ
    (dict(inputs={"x": (F, [1, 64, 2])}, outputs={"y": (F, [1, 64, 1])}),
     {}, "input 'x' [1, 64, 2] has 2 channels but output 'y' [1, 64, 1] has 1", "--audio-in/--audio-out"),
    # 12. every input is state or a constant
    (dict(inputs={"h": (F, [1, 8])}, outputs={"y": (F, [1, 64]), "h_out": (F, [1, 8])}),
     {}, "no input is left for audio", "--audio-in NAME"),
    # 13. a constant flag for a tensor the model does not have
    (dict(inputs={"x": (F, [1, 64])}, outputs={"y": (F, [1, 64])}),
     {"constants": {"rate": 1.0}}, "'rate' (in --shape or --constant) is no tensor of the model", "its tensors are x, y"),
    # 14. an int16 input
    (dict(inputs={"x": ("INT16", [1, 64])}, outputs={"y": (F, [1, 64])}),
     {}, "input 'x' is int16; plugins run float32", "export a float32 model"),
]


@pytest.mark.parametrize("signature,flags,problem,fix", REFUSALS,
                         ids=[f"refusal{i + 1}" for i in range(len(REFUSALS))])
def test_a_model_it_cannot_take_is_refused_in_one_line_naming_the_flag(tmp_path, signature, flags,
                                                                       problem, fix):
    with pytest.raises(RoleError) as caught:
        _roles(tmp_path, signature["inputs"], signature["outputs"], **flags)
    line = caught.value.one_line()
    assert "\n" not in line
    assert problem in line and fix in line, line
    assert isinstance(caught.value, UsageError)  # the task exits 2


@pytest.mark.parametrize("flags,expected", [
    ({"states": ["h"]}, "--state 'h' is not NAME=VALUE"),
    ({"shapes": ["x=1,a"]}, "--shape x='1,a': dimensions must be integers"),
    ({"constants": ["sr=fast"]}, "--constant sr='fast' is not a number"),
    ({"frame": "0.5"}, "--frame '0.5' is not a number"),
    ({"frame": -3}, "--frame -3 must be positive"),
])
def test_bad_role_flags_name_the_flag(flags, expected):
    with pytest.raises(UsageError) as caught:
        parse_role_flags(**flags)
    assert expected in caught.value.one_line()
