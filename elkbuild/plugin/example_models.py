"""Small example models, made here from fixed random weights (no downloads, no training).

- `saturator.onnx`: a neural saturation effect. Every sample of a frame of
  `frame` samples goes through the same tiny MLP (1 -> hidden -> 1, tanh), so the
  model is a smooth waveshaper; input and output are float32 [1, frame].
- `saturator_tflite_bytes`: the same saturator as a TFLite model (for the
  TensorFlow Lite engine's effect path; not one of the committed examples).
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


def _tflite_schema(*names: str):
    """Modules of the `tflite` package's generated schema bindings. The package
    re-exports each class under its module's name; the modules hold the builder
    functions."""
    return tuple(importlib.import_module(f"tflite.{name}") for name in names)


@dataclass(frozen=True)
class _TfliteTensor:
    name: str
    shape: list[int]
    buffer: int = 0                 # index into the constants; 0 = no constant data
    dtype: str = "FLOAT32"          # a TensorType member name


@dataclass(frozen=True)
class _TfliteOp:
    opcode: int                     # index into the model's operator codes
    inputs: list[int]
    outputs: list[int]
    options_type: int = 0           # BuiltinOptions member (0: NONE)
    options: int | None = None      # offset of the options table in the builder


def _tflite_model(builder, constants: list[bytes], tensors: list[_TfliteTensor],
                  make_ops, builtins: list[int], inputs: list[int], outputs: list[int],
                  description: str) -> bytes:
    """A one-subgraph TFLite flatbuffer (schema version 3, builtin ops only).

    constants[0] must be b"" (buffer 0 is empty by convention). make_ops(builder)
    is called once the tensors are written and returns the operators; it creates
    their option tables first, in the order it chooses."""
    (Buffer, Model, Operator, OperatorCode, SubGraph, Tensor, TensorType) = _tflite_schema(
        "Buffer", "Model", "Operator", "OperatorCode", "SubGraph", "Tensor", "TensorType")
    b = builder
    buffers = []
    for data in constants:
        vector = _aligned_bytes(b, data) if data else None
        Buffer.BufferStart(b)
        if vector is not None:
            Buffer.BufferAddData(b, vector)
        buffers.append(Buffer.BufferEnd(b))

    tensor_offsets = []
    for spec in tensors:
        name_off = b.CreateString(spec.name)
        shape_off = _int_vector(b, Tensor.TensorStartShapeVector, spec.shape)
        Tensor.TensorStart(b)
        Tensor.TensorAddShape(b, shape_off)
        Tensor.TensorAddType(b, getattr(TensorType.TensorType, spec.dtype))
        Tensor.TensorAddBuffer(b, spec.buffer)
        Tensor.TensorAddName(b, name_off)
        tensor_offsets.append(Tensor.TensorEnd(b))

    operators = []
    for op in make_ops(b):
        inputs_off = _int_vector(b, Operator.OperatorStartInputsVector, op.inputs)
        outputs_off = _int_vector(b, Operator.OperatorStartOutputsVector, op.outputs)
        Operator.OperatorStart(b)
        Operator.OperatorAddOpcodeIndex(b, op.opcode)
        Operator.OperatorAddInputs(b, inputs_off)
        Operator.OperatorAddOutputs(b, outputs_off)
        if op.options is not None:
            Operator.OperatorAddBuiltinOptionsType(b, op.options_type)
            Operator.OperatorAddBuiltinOptions(b, op.options)
        operators.append(Operator.OperatorEnd(b))

    def table_vector(start, items: list[int]) -> int:
        start(b, len(items))
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        return b.EndVector()

    tensors_off = table_vector(SubGraph.SubGraphStartTensorsVector, tensor_offsets)
    operators_off = table_vector(SubGraph.SubGraphStartOperatorsVector, operators)
    sg_inputs = _int_vector(b, SubGraph.SubGraphStartInputsVector, inputs)
    sg_outputs = _int_vector(b, SubGraph.SubGraphStartOutputsVector, outputs)
    sg_name = b.CreateString("main")
    SubGraph.SubGraphStart(b)
    SubGraph.SubGraphAddTensors(b, tensors_off)
    SubGraph.SubGraphAddInputs(b, sg_inputs)
    SubGraph.SubGraphAddOutputs(b, sg_outputs)
    SubGraph.SubGraphAddOperators(b, operators_off)
    SubGraph.SubGraphAddName(b, sg_name)
    subgraph = SubGraph.SubGraphEnd(b)

    codes = []
    for builtin in builtins:
        OperatorCode.OperatorCodeStart(b)
        # Readers older than schema 3a look only at the int8 field; newer ones at both.
        OperatorCode.OperatorCodeAddDeprecatedBuiltinCode(b, builtin)
        OperatorCode.OperatorCodeAddBuiltinCode(b, builtin)
        OperatorCode.OperatorCodeAddVersion(b, 1)
        codes.append(OperatorCode.OperatorCodeEnd(b))

    codes_off = table_vector(Model.ModelStartOperatorCodesVector, codes)
    subgraphs_off = table_vector(Model.ModelStartSubgraphsVector, [subgraph])
    buffers_off = table_vector(Model.ModelStartBuffersVector, buffers)
    description_off = b.CreateString(description)
    Model.ModelStart(b)
    Model.ModelAddVersion(b, 3)
    Model.ModelAddOperatorCodes(b, codes_off)
    Model.ModelAddSubgraphs(b, subgraphs_off)
    Model.ModelAddDescription(b, description_off)
    Model.ModelAddBuffers(b, buffers_off)
    b.Finish(Model.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _fully_connected_options(b, activation: int) -> int:
    (FullyConnectedOptions,) = _tflite_schema("FullyConnectedOptions")
    FullyConnectedOptions.FullyConnectedOptionsStart(b)
    FullyConnectedOptions.FullyConnectedOptionsAddFusedActivationFunction(b, activation)
    return FullyConnectedOptions.FullyConnectedOptionsEnd(b)


def classifier_tflite_bytes(seed: int = SEED) -> bytes:
    """The classifier as a TFLite flatbuffer (schema version 3, builtin ops only)."""
    import flatbuffers

    ActivationFunctionType, BuiltinOperator, BuiltinOptions, SoftmaxOptions = _tflite_schema(
        "ActivationFunctionType", "BuiltinOperator", "BuiltinOptions", "SoftmaxOptions")
    relu = ActivationFunctionType.ActivationFunctionType.RELU
    linear = ActivationFunctionType.ActivationFunctionType.NONE

    w = classifier_weights(seed)
    features, hidden, classes = w.w1.shape[1], w.w1.shape[0], w.w2.shape[0]
    constants = [b"", w.w1.tobytes(), w.b1.tobytes(), w.w2.tobytes(), w.b2.tobytes()]
    T = _TfliteTensor
    tensors = [T("features", [1, features]), T("fc1_weights", [hidden, features], 1),
               T("fc1_bias", [hidden], 2), T("hidden", [1, hidden]),
               T("fc2_weights", [classes, hidden], 3), T("fc2_bias", [classes], 4),
               T("logits", [1, classes]), T("probabilities", [1, classes])]

    def ops(b) -> list[_TfliteOp]:
        SoftmaxOptions.SoftmaxOptionsStart(b)
        SoftmaxOptions.SoftmaxOptionsAddBeta(b, 1.0)
        softmax_options = SoftmaxOptions.SoftmaxOptionsEnd(b)
        fc = BuiltinOptions.BuiltinOptions.FullyConnectedOptions
        sm = BuiltinOptions.BuiltinOptions.SoftmaxOptions
        return [_TfliteOp(0, [0, 1, 2], [3], fc, _fully_connected_options(b, relu)),
                _TfliteOp(0, [3, 4, 5], [6], fc, _fully_connected_options(b, linear)),
                _TfliteOp(1, [6], [7], sm, softmax_options)]

    return _tflite_model(flatbuffers.Builder(4096), constants, tensors, ops,
                         [BuiltinOperator.BuiltinOperator.FULLY_CONNECTED,
                          BuiltinOperator.BuiltinOperator.SOFTMAX],
                         [0], [7], "elkbuild example onset classifier")


def saturator_tflite_bytes(frame: int = SATURATOR_FRAME, seed: int = SEED) -> bytes:
    """The saturation effect of saturator_onnx_bytes as a TFLite flatbuffer: float32
    [1, frame] -> [1, frame], y = tanh(W2 . tanh(W1 . x + b1) + b2) per sample.

    RESHAPE [1, frame] -> [frame, 1], FULLY_CONNECTED (1 -> hidden), TANH,
    FULLY_CONNECTED (hidden -> 1), TANH, RESHAPE back to [1, frame]. TFLite keeps FC
    weights as [out, in], so the ONNX MatMul weights go in transposed."""
    import flatbuffers

    ActivationFunctionType, BuiltinOperator, BuiltinOptions = _tflite_schema(
        "ActivationFunctionType", "BuiltinOperator", "BuiltinOptions")
    linear = ActivationFunctionType.ActivationFunctionType.NONE

    w = saturator_weights(seed)
    hidden = w.w1.shape[1]
    column = np.array([frame, 1], dtype=np.int32)
    frame_shape = np.array([1, frame], dtype=np.int32)
    constants = [b"", column.tobytes(), np.ascontiguousarray(w.w1.T).tobytes(), w.b1.tobytes(),
                 np.ascontiguousarray(w.w2.T).tobytes(), w.b2.tobytes(), frame_shape.tobytes()]
    T = _TfliteTensor
    tensors = [T("audio", [1, frame]),                        # 0
               T("column", [2], 1, "INT32"),                  # 1
               T("samples", [frame, 1]),                      # 2
               T("w1", [hidden, 1], 2), T("b1", [hidden], 3),  # 3, 4
               T("h_pre", [frame, hidden]), T("h", [frame, hidden]),  # 5, 6
               T("w2", [1, hidden], 4), T("b2", [1], 5),       # 7, 8
               T("y_pre", [frame, 1]), T("y", [frame, 1]),     # 9, 10
               T("frame_shape", [2], 6, "INT32"),             # 11
               T("saturated", [1, frame])]                    # 12
    reshape, fully_connected, tanh = 0, 1, 2

    def ops(b) -> list[_TfliteOp]:
        fc = BuiltinOptions.BuiltinOptions.FullyConnectedOptions
        return [_TfliteOp(reshape, [0, 1], [2]),
                _TfliteOp(fully_connected, [2, 3, 4], [5], fc, _fully_connected_options(b, linear)),
                _TfliteOp(tanh, [5], [6]),
                _TfliteOp(fully_connected, [6, 7, 8], [9], fc, _fully_connected_options(b, linear)),
                _TfliteOp(tanh, [9], [10]),
                _TfliteOp(reshape, [10, 11], [12])]

    return _tflite_model(flatbuffers.Builder(4096), constants, tensors, ops,
                         [BuiltinOperator.BuiltinOperator.RESHAPE,
                          BuiltinOperator.BuiltinOperator.FULLY_CONNECTED,
                          BuiltinOperator.BuiltinOperator.TANH],
                         [0], [12], "elkbuild example neural saturator")


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
