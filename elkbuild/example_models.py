"""Small example models, made here from fixed random weights (no downloads, no training).

- `saturator.onnx`: a neural saturation effect. Every sample of a frame of
  `frame` samples goes through the same tiny MLP (1 -> hidden -> 1, tanh), so the
  model is a smooth waveshaper; input and output are float32 [1, frame].
- `classifier.tflite`: a few onset features -> softmax over a few classes
  (FULLY_CONNECTED + RELU, FULLY_CONNECTED, SOFTMAX). TensorFlow is not needed:
  the flatbuffer is written directly against the TFLite schema, whose generated
  Python bindings the `tflite` package carries.

Both are deterministic: the same seed gives byte-identical files, so a model in a
plugin project can always be rebuilt and compared.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SATURATOR_FRAME = 64
SATURATOR_HIDDEN = 8
CLASSIFIER_FEATURES = 8
CLASSIFIER_HIDDEN = 16
CLASSIFIER_CLASSES = 4
SEED = 20240501


@dataclass(frozen=True)
class SaturatorWeights:
    w1: np.ndarray  # [1, hidden]
    b1: np.ndarray  # [hidden]
    w2: np.ndarray  # [hidden, 1]
    b2: np.ndarray  # [1]

    def apply(self, samples: np.ndarray) -> np.ndarray:
        """The model's function in numpy (float64), for reference outputs."""
        x = np.asarray(samples, dtype=np.float64).reshape(-1, 1)
        hidden = np.tanh(x @ self.w1 + self.b1)
        return np.tanh(hidden @ self.w2 + self.b2).reshape(np.shape(samples))


@dataclass(frozen=True)
class ClassifierWeights:
    w1: np.ndarray  # [hidden, features] (TFLite keeps FC weights as [out, in])
    b1: np.ndarray
    w2: np.ndarray  # [classes, hidden]
    b2: np.ndarray

    def apply(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64).reshape(1, -1)
        hidden = np.maximum(x @ self.w1.T + self.b1, 0.0)
        logits = hidden @ self.w2.T + self.b2
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def saturator_weights(seed: int = SEED, hidden: int = SATURATOR_HIDDEN) -> SaturatorWeights:
    rng = np.random.default_rng(seed)
    # A positive input gain makes the first layer drive tanh hard: audible saturation
    # while staying odd-symmetric around zero apart from the small biases.
    w1 = rng.uniform(1.0, 4.0, size=(1, hidden)).astype(np.float32)
    b1 = rng.normal(0.0, 0.05, size=(hidden,)).astype(np.float32)
    w2 = (rng.uniform(0.5, 1.0, size=(hidden, 1)) / hidden * 2.0).astype(np.float32)
    b2 = np.zeros((1,), dtype=np.float32)
    return SaturatorWeights(w1, b1, w2, b2)


def classifier_weights(seed: int = SEED, features: int = CLASSIFIER_FEATURES,
                       hidden: int = CLASSIFIER_HIDDEN,
                       classes: int = CLASSIFIER_CLASSES) -> ClassifierWeights:
    rng = np.random.default_rng(seed + 1)
    return ClassifierWeights(
        w1=rng.normal(0.0, 0.5, size=(hidden, features)).astype(np.float32),
        b1=rng.normal(0.0, 0.1, size=(hidden,)).astype(np.float32),
        w2=rng.normal(0.0, 0.5, size=(classes, hidden)).astype(np.float32),
        b2=rng.normal(0.0, 0.1, size=(classes,)).astype(np.float32))


def saturator_onnx_bytes(frame: int = SATURATOR_FRAME, seed: int = SEED) -> bytes:
    """The saturation effect as ONNX (opset 13, IR 8: loads in ONNX Runtime >= 1.10)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = saturator_weights(seed)
    nodes = [
        helper.make_node("Reshape", ["audio", "column"], ["samples"]),
        helper.make_node("MatMul", ["samples", "w1"], ["h_mm"]),
        helper.make_node("Add", ["h_mm", "b1"], ["h_pre"]),
        helper.make_node("Tanh", ["h_pre"], ["h"]),
        helper.make_node("MatMul", ["h", "w2"], ["y_mm"]),
        helper.make_node("Add", ["y_mm", "b2"], ["y_pre"]),
        helper.make_node("Tanh", ["y_pre"], ["y"]),
        helper.make_node("Reshape", ["y", "frame_shape"], ["saturated"]),
    ]
    initializers = [
        numpy_helper.from_array(np.array([-1, 1], dtype=np.int64), "column"),
        numpy_helper.from_array(np.array([1, frame], dtype=np.int64), "frame_shape"),
        numpy_helper.from_array(w.w1, "w1"), numpy_helper.from_array(w.b1, "b1"),
        numpy_helper.from_array(w.w2, "w2"), numpy_helper.from_array(w.b2, "b2"),
    ]
    graph = helper.make_graph(
        nodes, "neural_saturator",
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, frame])],
        [helper.make_tensor_value_info("saturated", TensorProto.FLOAT, [1, frame])],
        initializers)
    model = helper.make_model(graph, producer_name="elkbuild",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString(deterministic=True)


def _aligned_bytes(builder, data: bytes, alignment: int = 16) -> int:
    """A byte vector whose first byte is `alignment`-aligned in the finished file
    (TFLite maps constant tensors in place; float data wants natural alignment)."""
    builder.StartVector(1, len(data), alignment)
    builder.head = builder.head - len(data)
    builder.Bytes[builder.head:builder.head + len(data)] = data
    return builder.EndVector()


def _int_vector(builder, start, values: list[int]) -> int:
    start(builder, len(values))
    for value in reversed(values):
        builder.PrependInt32(value)
    return builder.EndVector()


def classifier_tflite_bytes(seed: int = SEED) -> bytes:
    """The classifier as a TFLite flatbuffer (schema version 3, builtin ops only)."""
    import flatbuffers

    # The package re-exports each class under its module's name; take the modules,
    # which hold the builder functions.
    (ActivationFunctionType, Buffer, BuiltinOperator, BuiltinOptions, FullyConnectedOptions,
     Model, Operator, OperatorCode, SoftmaxOptions, SubGraph, Tensor, TensorType) = (
        importlib.import_module(f"tflite.{name}") for name in (
            "ActivationFunctionType", "Buffer", "BuiltinOperator", "BuiltinOptions",
            "FullyConnectedOptions", "Model", "Operator", "OperatorCode", "SoftmaxOptions",
            "SubGraph", "Tensor", "TensorType"))

    w = classifier_weights(seed)
    features, hidden, classes = w.w1.shape[1], w.w1.shape[0], w.w2.shape[0]
    b = flatbuffers.Builder(4096)

    # Buffer 0 is empty by convention; tensors without constant data point at it.
    constants = [b"", w.w1.tobytes(), w.b1.tobytes(), w.w2.tobytes(), w.b2.tobytes()]
    buffers = []
    for data in constants:
        vector = _aligned_bytes(b, data) if data else None
        Buffer.BufferStart(b)
        if vector is not None:
            Buffer.BufferAddData(b, vector)
        buffers.append(Buffer.BufferEnd(b))

    # (name, shape, buffer index)
    tensor_specs = [("features", [1, features], 0), ("fc1_weights", [hidden, features], 1),
                    ("fc1_bias", [hidden], 2), ("hidden", [1, hidden], 0),
                    ("fc2_weights", [classes, hidden], 3), ("fc2_bias", [classes], 4),
                    ("logits", [1, classes], 0), ("probabilities", [1, classes], 0)]
    tensors = []
    for name, shape, buffer in tensor_specs:
        name_off = b.CreateString(name)
        shape_off = _int_vector(b, Tensor.TensorStartShapeVector, shape)
        Tensor.TensorStart(b)
        Tensor.TensorAddShape(b, shape_off)
        Tensor.TensorAddType(b, TensorType.TensorType.FLOAT32)
        Tensor.TensorAddBuffer(b, buffer)
        Tensor.TensorAddName(b, name_off)
        tensors.append(Tensor.TensorEnd(b))

    def fully_connected_options(activation: int) -> int:
        FullyConnectedOptions.FullyConnectedOptionsStart(b)
        FullyConnectedOptions.FullyConnectedOptionsAddFusedActivationFunction(b, activation)
        return FullyConnectedOptions.FullyConnectedOptionsEnd(b)

    SoftmaxOptions.SoftmaxOptionsStart(b)
    SoftmaxOptions.SoftmaxOptionsAddBeta(b, 1.0)
    softmax_options = SoftmaxOptions.SoftmaxOptionsEnd(b)
    fc = BuiltinOptions.BuiltinOptions.FullyConnectedOptions
    sm = BuiltinOptions.BuiltinOptions.SoftmaxOptions
    # (opcode index, inputs, outputs, options type, options)
    op_specs = [
        (0, [0, 1, 2], [3], fc, fully_connected_options(ActivationFunctionType.ActivationFunctionType.RELU)),
        (0, [3, 4, 5], [6], fc, fully_connected_options(ActivationFunctionType.ActivationFunctionType.NONE)),
        (1, [6], [7], sm, softmax_options),
    ]
    operators = []
    for opcode, inputs, outputs, options_type, options in op_specs:
        inputs_off = _int_vector(b, Operator.OperatorStartInputsVector, inputs)
        outputs_off = _int_vector(b, Operator.OperatorStartOutputsVector, outputs)
        Operator.OperatorStart(b)
        Operator.OperatorAddOpcodeIndex(b, opcode)
        Operator.OperatorAddInputs(b, inputs_off)
        Operator.OperatorAddOutputs(b, outputs_off)
        Operator.OperatorAddBuiltinOptionsType(b, options_type)
        Operator.OperatorAddBuiltinOptions(b, options)
        operators.append(Operator.OperatorEnd(b))

    def table_vector(start, items: list[int]) -> int:
        start(b, len(items))
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        return b.EndVector()

    tensors_off = table_vector(SubGraph.SubGraphStartTensorsVector, tensors)
    operators_off = table_vector(SubGraph.SubGraphStartOperatorsVector, operators)
    sg_inputs = _int_vector(b, SubGraph.SubGraphStartInputsVector, [0])
    sg_outputs = _int_vector(b, SubGraph.SubGraphStartOutputsVector, [7])
    sg_name = b.CreateString("main")
    SubGraph.SubGraphStart(b)
    SubGraph.SubGraphAddTensors(b, tensors_off)
    SubGraph.SubGraphAddInputs(b, sg_inputs)
    SubGraph.SubGraphAddOutputs(b, sg_outputs)
    SubGraph.SubGraphAddOperators(b, operators_off)
    SubGraph.SubGraphAddName(b, sg_name)
    subgraph = SubGraph.SubGraphEnd(b)

    codes = []
    for builtin in (BuiltinOperator.BuiltinOperator.FULLY_CONNECTED,
                    BuiltinOperator.BuiltinOperator.SOFTMAX):
        OperatorCode.OperatorCodeStart(b)
        # Readers older than schema 3a look only at the int8 field; newer ones at both.
        OperatorCode.OperatorCodeAddDeprecatedBuiltinCode(b, builtin)
        OperatorCode.OperatorCodeAddBuiltinCode(b, builtin)
        OperatorCode.OperatorCodeAddVersion(b, 1)
        codes.append(OperatorCode.OperatorCodeEnd(b))

    codes_off = table_vector(Model.ModelStartOperatorCodesVector, codes)
    subgraphs_off = table_vector(Model.ModelStartSubgraphsVector, [subgraph])
    buffers_off = table_vector(Model.ModelStartBuffersVector, buffers)
    description = b.CreateString("elkbuild example onset classifier")
    Model.ModelStart(b)
    Model.ModelAddVersion(b, 3)
    Model.ModelAddOperatorCodes(b, codes_off)
    Model.ModelAddSubgraphs(b, subgraphs_off)
    Model.ModelAddDescription(b, description)
    Model.ModelAddBuffers(b, buffers_off)
    b.Finish(Model.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


EXAMPLES = {
    "saturator.onnx": saturator_onnx_bytes,
    "classifier.tflite": classifier_tflite_bytes,
}


def write_examples(into: Path) -> dict[str, Path]:
    """Write every example model into `into`; returns file name -> path."""
    into.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, make in EXAMPLES.items():
        path = into / name
        data = make()
        # Write beside, then rename: a reader never sees half a model.
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        partial.replace(path)
        written[name] = path
    return written


def reference_outputs(path: Path) -> dict:
    """Run a model once in its Python runtime on a fixed input: the numbers a plugin
    build must reproduce (onnxruntime for .onnx, the LiteRT interpreter for .tflite)."""
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        tensor_in, tensor_out = session.get_inputs()[0], session.get_outputs()[0]
        shape = [d if isinstance(d, int) else 1 for d in tensor_in.shape]
        x = np.linspace(-1.0, 1.0, int(np.prod(shape)), dtype=np.float32).reshape(shape)
        y = session.run([tensor_out.name], {tensor_in.name: x})[0]
        engine = f"onnxruntime {onnxruntime.__version__}"
    else:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
        detail_in = interpreter.get_input_details()[0]
        detail_out = interpreter.get_output_details()[0]
        shape = [int(d) for d in detail_in["shape"]]
        x = np.linspace(-1.0, 1.0, int(np.prod(shape)), dtype=np.float32).reshape(shape)
        interpreter.set_tensor(detail_in["index"], x)
        interpreter.invoke()
        y = interpreter.get_tensor(detail_out["index"])
        engine = "ai-edge-litert"
    return {"engine": engine, "input_shape": list(x.shape), "output_shape": list(y.shape),
            "input": [float(v) for v in x.ravel()], "output": [float(v) for v in y.ravel()]}
