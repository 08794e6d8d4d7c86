"""Make the small example models the runtime tests stream (tests/runtime/models/).

Run with a Python that has torch and onnx (not elkbuild's .venv, which needs
neither): the models are committed, so CI needs no torch.

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.13.0 onnx onnxscript numpy
    /tmp/torchenv/bin/python scripts/make_runtime_models.py

Each model gets a .roles file beside it: the role of every tensor, as
elkrt::ModelDescription reads it.

- lstm_amp.onnx: one LSTM layer (hidden 12) + dense + skip, frames of 64, h/c in
  and out (the GuitarML / NAM-LSTM kind).
- wavenet.onnx (+ wavenet.onnx.data, torch's external-data layout): dilated causal
  convolutions 1..512 twice, kernel 3, receptive field 4093, a dynamic time axis:
  input T, output T - 4092 (the runtime tests fix T = 64 + 4092).
- gru_frame576.onnx: a GRU over frames of 576 samples (no divisor of 64, 100 or
  128), a packed state, an int64 sample-rate input and an extra level output.
- lstm_cell.tflite: an LSTM cell stepped once per frame of 64 samples with h/c
  (16 each) as inputs and outputs, and a dense skip to the audio out, in TFLite
  builtin ops (TFLite's own LSTM op keeps its state inside the interpreter). It
  needs only numpy, flatbuffers and tflite: `--tflite-only` makes it alone, e.g.
  with elkbuild's .venv.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "runtime" / "models"


def write_onnx(out: Path) -> None:
    """The torch models, exported with torch's (dynamo) exporter."""
    import torch
    from torch import nn

    class LstmAmp(nn.Module):
        def __init__(self, hidden: int = 12):
            super().__init__()
            self.lstm = nn.LSTM(1, hidden, batch_first=True)
            self.dense = nn.Linear(hidden, 1)

        def forward(self, x, h, c):  # x [1, T, 1], h/c [1, 1, hidden]
            y, (h_out, c_out) = self.lstm(x, (h, c))
            return x + self.dense(y), h_out, c_out

    class WaveNet(nn.Module):
        """Gated dilated causal convolutions without padding: each layer shortens the
        signal by 2 * dilation, so the output is the input minus the receptive field - 1."""

        def __init__(self, channels: int = 8, dilations=tuple(2 ** i for i in range(10)) * 2):
            super().__init__()
            self.dilations = dilations
            self.receptive_field = 1 + sum(2 * d for d in dilations)
            self.inlet = nn.Conv1d(1, channels, 1)
            self.filters = nn.ModuleList(nn.Conv1d(channels, 2 * channels, 3, dilation=d) for d in dilations)
            self.mixes = nn.ModuleList(nn.Conv1d(channels, channels, 1) for _ in dilations)
            self.head = nn.Conv1d(channels, 1, 1)

        def forward(self, x):  # x [1, 1, T + RF - 1] -> [1, 1, T]
            z = self.inlet(x)
            skip = 0
            for dilation, conv, mix in zip(self.dilations, self.filters, self.mixes):
                gated = conv(z)
                a, b = gated.chunk(2, dim=1)
                out = mix(torch.tanh(a) * torch.sigmoid(b))
                z = z[:, :, 2 * dilation:] + out
                skip = out if isinstance(skip, int) else skip[:, :, 2 * dilation:] + out
            return self.head(skip)

    class FrameGru(nn.Module):
        def __init__(self, frame: int = 576, hidden: int = 8):
            super().__init__()
            self.frame = frame
            self.gru = nn.GRU(1, hidden, batch_first=True)
            self.dense = nn.Linear(hidden, 1)

        def forward(self, audio, state, sample_rate):  # audio [1, F], state [1, 1, H], sample_rate int64 [1]
            gain = sample_rate.to(torch.float32) / 48000.0
            y, state_out = self.gru(audio.unsqueeze(-1), state)
            out = audio + gain * self.dense(y).squeeze(-1)
            level = out.pow(2).mean(dim=1)
            return out, state_out, level

    def export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
               external_data: bool, dynamic_shapes: dict | None = None) -> None:
        module.eval()
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in (path, path.with_name(path.name + ".data")):
            stale.unlink(missing_ok=True)
        with torch.no_grad():
            torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                              dynamo=True, external_data=external_data, optimize=True,
                              dynamic_shapes=dynamic_shapes)

    torch.manual_seed(10)
    lstm = LstmAmp()
    hidden = lstm.lstm.hidden_size
    export(lstm, (torch.zeros(1, 64, 1), torch.zeros(1, 1, hidden), torch.zeros(1, 1, hidden)),
           out / "lstm_amp.onnx", ["x", "h", "c"], ["y", "h_out", "c_out"], external_data=False)
    (out / "lstm_amp.roles").write_text(
        "# LSTM amp: frames of 64, state h/c carried\n"
        "input x audio time=1 channel=2\n"
        "input h state from=h_out\n"
        "input c state from=c_out\n"
        "output y audio time=1 channel=2\n"
        "output h_out state\n"
        "output c_out state\n")

    torch.manual_seed(11)
    wavenet = WaveNet()
    context = wavenet.receptive_field - 1
    # A dynamic time axis, as a user exports a convolutional model: the file says y is
    # 'T - 4092' long, so new-plugin's --frame N makes it N out and N + 4092 in.
    time = torch.export.Dim("T", min=context + 1, max=1 << 20)
    export(wavenet, (torch.zeros(1, 1, 64 + context),), out / "wavenet.onnx", ["x"], ["y"],
           external_data=True, dynamic_shapes={"x": {2: time}})
    (out / "wavenet.roles").write_text(
        f"# WaveNet: receptive field {wavenet.receptive_field}, input 64 + {context} past samples\n"
        f"input x audio time=2 channel=1 shape=1,1,{64 + context}\n"
        "output y audio time=2 channel=1\n")

    torch.manual_seed(12)
    gru = FrameGru()
    export(gru, (torch.zeros(1, gru.frame), torch.zeros(1, 1, gru.gru.hidden_size),
                 torch.tensor([48000], dtype=torch.int64)),
           out / "gru_frame576.onnx", ["audio", "state", "sample_rate"], ["out", "state_out", "level"],
           external_data=False)
    (out / "gru_frame576.roles").write_text(
        "# GRU over frames of 576 samples, packed state, int64 sample rate, extra level output\n"
        "input audio audio time=1\n"
        "input state state from=state_out\n"
        "input sample_rate constant value=48000\n"
        "output out audio time=1\n"
        "output state_out state\n"
        "output level extra\n"
        "sample_rate 48000\n")


def lstm_cell_tflite(frame: int = 64, hidden: int = 16, seed: int = 13) -> bytes:
    """y = x + Wy . h', with h', c' from one LSTM cell step on [x, h] (gates i, f, g, o)."""
    import flatbuffers

    sys.path.insert(0, str(REPO))
    from elkbuild.plugin.example_models import (_fully_connected_options, _tflite_model, _tflite_schema,
                                                _TfliteOp, _TfliteTensor)

    ActivationFunctionType, BuiltinOperator, BuiltinOptions, ConcatenationOptions = _tflite_schema(
        "ActivationFunctionType", "BuiltinOperator", "BuiltinOptions", "ConcatenationOptions")
    linear = ActivationFunctionType.ActivationFunctionType.NONE
    rng = np.random.default_rng(seed)
    width = frame + hidden
    gate_weights = [(rng.standard_normal((hidden, width)) / np.sqrt(width)).astype(np.float32) for _ in range(4)]
    gate_biases = [(0.1 * rng.standard_normal(hidden)).astype(np.float32) for _ in range(4)]
    out_weights = (0.3 * rng.standard_normal((frame, hidden)) / np.sqrt(hidden)).astype(np.float32)
    out_bias = np.zeros(frame, np.float32)
    constants = [b""]
    for weights, bias in zip(gate_weights, gate_biases):
        constants += [weights.tobytes(), bias.tobytes()]
    constants += [out_weights.tobytes(), out_bias.tobytes()]

    T = _TfliteTensor
    tensors = [T("x", [1, frame]), T("h", [1, hidden]), T("c", [1, hidden]),    # 0 1 2
               T("xh", [1, width])]                                              # 3
    for gate in range(4):                                                        # 4..15
        tensors += [T(f"w{gate}", [hidden, width], 1 + 2 * gate), T(f"b{gate}", [hidden], 2 + 2 * gate),
                    T(f"pre{gate}", [1, hidden])]
    tensors += [T("i", [1, hidden]), T("f", [1, hidden]), T("g", [1, hidden]), T("o", [1, hidden]),  # 16..19
                T("fc", [1, hidden]), T("ig", [1, hidden]), T("c_out", [1, hidden]),                 # 20..22
                T("tc", [1, hidden]), T("h_out", [1, hidden]),                                       # 23 24
                T("wy", [frame, hidden], 9), T("by", [frame], 10), T("dy", [1, frame]),              # 25..27
                T("y", [1, frame])]                                                                  # 28
    concatenation, fully_connected, logistic, tanh, mul, add = range(6)

    def ops(b) -> list:
        ConcatenationOptions.ConcatenationOptionsStart(b)
        ConcatenationOptions.ConcatenationOptionsAddAxis(b, 1)
        concat_options = ConcatenationOptions.ConcatenationOptionsEnd(b)
        fc = BuiltinOptions.BuiltinOptions.FullyConnectedOptions
        result = [_TfliteOp(concatenation, [0, 1], [3], BuiltinOptions.BuiltinOptions.ConcatenationOptions,
                            concat_options)]
        for gate in range(4):
            base = 4 + 3 * gate
            result.append(_TfliteOp(fully_connected, [3, base, base + 1], [base + 2], fc,
                                    _fully_connected_options(b, linear)))
        result += [_TfliteOp(logistic, [6], [16]), _TfliteOp(logistic, [9], [17]),
                   _TfliteOp(tanh, [12], [18]), _TfliteOp(logistic, [15], [19]),
                   _TfliteOp(mul, [17, 2], [20]), _TfliteOp(mul, [16, 18], [21]), _TfliteOp(add, [20, 21], [22]),
                   _TfliteOp(tanh, [22], [23]), _TfliteOp(mul, [19, 23], [24]),
                   _TfliteOp(fully_connected, [24, 25, 26], [27], fc, _fully_connected_options(b, linear)),
                   _TfliteOp(add, [0, 27], [28])]
        return result

    op = BuiltinOperator.BuiltinOperator
    return _tflite_model(flatbuffers.Builder(65536), constants, tensors, ops,
                         [op.CONCATENATION, op.FULLY_CONNECTED, op.LOGISTIC, op.TANH, op.MUL, op.ADD],
                         [0, 1, 2], [28, 24, 22], "elkrt example LSTM cell with h/c state")


def write_tflite(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "lstm_cell.tflite").write_bytes(lstm_cell_tflite())
    (out / "lstm_cell.roles").write_text(
        "# LSTM cell in TFLite builtin ops: frames of 64, state h/c carried\n"
        "input x audio time=1\n"
        "input h state from=h_out\n"
        "input c state from=c_out\n"
        "output y audio time=1\n"
        "output h_out state\n"
        "output c_out state\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--tflite-only", action="store_true", help="only lstm_cell.tflite (no torch needed)")
    args = parser.parse_args()
    out = args.out
    write_tflite(out)
    if args.tflite_only:
        return
    if importlib.util.find_spec("torch") is None:
        sys.exit("torch is not installed: use --tflite-only, or a Python with torch (see the docstring)")

    write_onnx(out)

    for path in sorted(out.iterdir()):
        print(f"{path.name}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
