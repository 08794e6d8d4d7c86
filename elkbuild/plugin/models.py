"""Read what a plugin template needs to know about a model: its tensors' names,
shapes and element types, for ONNX and TFLite files.

The plugin preallocates every buffer from these shapes before audio starts, so a
shape must be fixed: a dynamic leading (batch) dimension is taken as 1, any other
dynamic dimension is refused with the fix (export with a fixed size).
"""

from __future__ import annotations

import importlib
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from elkbuild.errors import ElkbuildError, ToolMissing

FORMATS = {".onnx": "onnx", ".tflite": "tflite"}


class ModelError(ElkbuildError):
    """A model file cannot be read or does not fit a plugin; names the file and the fix."""

    def __init__(self, path: str | Path, problem: str, hint: str | None = None) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: {problem}", hint)


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int | None, ...]   # None: a dynamic dimension
    dtype: str                      # numpy-style name: float32, int8, ...
    # A dynamic dimension's name, where the file gives one: 'T' in, 'T - 4092' out
    # (torch's exporter writes how an output's length follows from the inputs').
    symbols: tuple[str | None, ...] = ()

    def symbol(self, axis: int) -> str | None:
        """The name the file gives dimension `axis`, if it is dynamic and named."""
        return self.symbols[axis] if axis < len(self.symbols) else None

    @property
    def fixed_shape(self) -> tuple[int, ...]:
        """The shape with a dynamic batch dimension taken as 1; None elsewhere stays."""
        if self.shape and self.shape[0] is None:
            return (1,) + tuple(self.shape[1:])  # type: ignore[return-value]
        return self.shape  # type: ignore[return-value]

    @property
    def is_fixed(self) -> bool:
        return all(d is not None for d in self.fixed_shape)

    @property
    def elements(self) -> int:
        return math.prod(d for d in self.fixed_shape if d is not None)


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    format: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    # Files beside the model that hold its weights (ONNX external data, e.g. the
    # MODEL.onnx.data torch's exporter writes): they travel with the model.
    external_data: tuple[Path, ...] = ()


def model_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ModelError(path, f"unknown model type {path.suffix or '(no suffix)'!r}",
                         "give a .onnx or a .tflite file")
    return fmt


def read_model(path: Path) -> ModelInfo:
    """Inputs and outputs of an ONNX or TFLite model, chosen by the file's suffix."""
    path = Path(path)
    fmt = model_format(path)
    if not path.is_file():
        raise ModelError(path, "no such file", "check the --model path")
    if path.stat().st_size == 0:
        raise ModelError(path, "is empty", "export the model again")
    return read_onnx(path) if fmt == "onnx" else read_tflite(path)


# ---- ONNX -------------------------------------------------------------------

def _python_package(module: str, pin: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ToolMissing(f"{module} (Python package)", f"pip install {pin}") from None


def read_onnx(path: Path) -> ModelInfo:
    onnx = _python_package("onnx", "onnx==1.23.2")
    from google.protobuf.message import DecodeError

    try:
        # External weight files are not needed to know the shapes.
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeWarning, ValueError, OSError) as error:
        raise ModelError(path, f"is not a readable ONNX model ({_short(error)})",
                         "export it again with torch.onnx.export or tf2onnx") from None
    if not model.graph.node:
        raise ModelError(path, "is not an ONNX model (its graph has no nodes)",
                         "export it again with torch.onnx.export or tf2onnx")
    constants = {init.name for init in model.graph.initializer}
    inputs = tuple(_onnx_tensor(path, v) for v in model.graph.input if v.name not in constants)
    outputs = tuple(_onnx_tensor(path, v) for v in model.graph.output)
    return ModelInfo(path, "onnx", inputs, outputs, _external_data(path, model))


def onnx_runner(info: ModelInfo) -> Callable[[dict[str, tuple[tuple[int, ...], str, float]]],
                                              dict[str, tuple[int, ...]]]:
    """One onnxruntime session of `info`: each call runs it once over constant inputs
    (name -> shape, dtype, value) and returns the output shapes; a model that cannot be
    opened or a run that fails is a ModelError with ORT's reason."""
    ort = _python_package("onnxruntime", "onnxruntime==1.31.1")
    import numpy as np

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 4   # a failed probe run is expected, not news
    sessions = []

    def run(inputs: dict[str, tuple[tuple[int, ...], str, float]]) -> dict[str, tuple[int, ...]]:
        try:
            if not sessions:
                sessions.append(ort.InferenceSession(str(info.path), options, providers=["CPUExecutionProvider"]))
            results = sessions[0].run(None, {name: np.full(shape, value, dtype)
                                             for name, (shape, dtype, value) in inputs.items()})
        except Exception as error:  # onnxruntime raises its own unrelated classes
            raise ModelError(info.path, f"one run failed ({_short(_onnxruntime_reason(error))})",
                             "give every dynamic dimension with --shape NAME=...") from None
        return {o.name: tuple(int(d) for d in r.shape) for o, r in zip(sessions[0].get_outputs(), results)}

    return run


def _onnxruntime_reason(error: BaseException) -> str:
    """ORT's message without its status prefix, the model's path and the C++ source
    location, which push the reason past what one line shows."""
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", str(error))
    text = re.sub(r"^Load model from .*? failed:", "", text)
    return re.sub(r"\S+\.(?:cc|h):\d+ [^()]*\([^()]*\)\s*", "", text)


def external_data_files(path: Path) -> tuple[Path, ...]:
    """The external data files a model needs beside it (none for TFLite)."""
    return read_model(path).external_data if model_format(Path(path)) == "onnx" else ()


def _external_data(path: Path, model) -> tuple[Path, ...]:
    """The files the model's initializers keep their data in, beside the model; each
    must exist there (ONNX Runtime resolves them relative to the model's folder)."""
    from onnx import TensorProto

    files: dict[str, str] = {}
    for tensor in model.graph.initializer:
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
        files.setdefault(location, tensor.name)
    found = []
    for location, tensor_name in sorted(files.items()):
        if not location or Path(location).name != location:
            raise ModelError(path, f"initializer {tensor_name!r} keeps its data in {location!r}, "
                             "not in a file beside the model",
                             "save the model with onnx.save(..., save_as_external_data=True, "
                             "location='MODEL.onnx.data')")
        data = path.parent / location
        if not data.is_file():
            raise ModelError(path, f"initializer {tensor_name!r} keeps its data in {location}, "
                             f"which is not beside the model ({data} does not exist)",
                             f"copy {location} next to {path.name}")
        found.append(data)
    return tuple(found)


def _onnx_tensor(path: Path, value) -> TensorInfo:
    from onnx import helper

    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        raise ModelError(path, f"input/output {value.name!r} is a {kind}, not a tensor",
                         "a plugin model takes and gives plain tensors")
    tensor = value.type.tensor_type
    try:
        dtype = str(helper.tensor_dtype_to_np_dtype(tensor.elem_type))
    except (KeyError, ValueError):
        dtype = f"onnx-type-{tensor.elem_type}"
    if not tensor.HasField("shape"):
        raise ModelError(path, f"tensor {value.name!r} has no shape",
                         "export the model with fixed input shapes")
    shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
    symbols = tuple(None if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim)
    return TensorInfo(value.name, shape, dtype, symbols)


# ---- TFLite -----------------------------------------------------------------

_TFLITE_IDENTIFIER = b"TFL3"


def _tflite_type_names() -> dict[int, str]:
    tensor_type = importlib.import_module("tflite.TensorType").TensorType
    return {value: name.lower() for name, value in vars(tensor_type).items()
            if not name.startswith("_") and isinstance(value, int)}


def read_tflite(path: Path) -> ModelInfo:
    data = path.read_bytes()
    # A flatbuffer starts with the root table offset, then the 4-byte file identifier.
    if len(data) < 8 or data[4:8] != _TFLITE_IDENTIFIER:
        raise ModelError(path, "is not a TFLite model (no 'TFL3' file identifier)",
                         "convert it with tf.lite.TFLiteConverter or ai-edge-torch")
    _python_package("tflite", "tflite==2.18.0")
    model_module = importlib.import_module("tflite.Model")
    names = _tflite_type_names()
    try:
        model = model_module.Model.GetRootAs(data, 0)
        if model.SubgraphsLength() < 1:
            raise ModelError(path, "has no subgraph", "convert the model again")
        graph = model.Subgraphs(0)

        def tensor(index: int) -> TensorInfo:
            t = graph.Tensors(index)
            # shape_signature marks dynamic dimensions with -1; shape holds 1 there.
            signature = (t.ShapeSignatureAsNumpy() if t.ShapeSignatureLength() else None)
            dims = signature if signature is not None else (
                t.ShapeAsNumpy() if t.ShapeLength() else [])
            shape = tuple(None if int(d) < 0 else int(d) for d in dims)
            name = (t.Name() or b"").decode("utf-8", "replace")
            return TensorInfo(name, shape, names.get(t.Type(), f"tflite-type-{t.Type()}"))

        inputs = tuple(tensor(int(i)) for i in graph.InputsAsNumpy())
        outputs = tuple(tensor(int(i)) for i in graph.OutputsAsNumpy())
    except ModelError:
        raise
    except (IndexError, struct.error, ValueError, TypeError, AttributeError) as error:
        raise ModelError(path, f"is a damaged TFLite flatbuffer ({_short(error)})",
                         "convert the model again; the file may be truncated") from None
    return ModelInfo(path, "tflite", inputs, outputs)


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."
