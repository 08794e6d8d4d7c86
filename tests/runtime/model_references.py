"""Streaming references of the example models in tests/runtime/models, with plain
onnxruntime calls and nothing of elkrt: the whole signal, frame by frame with state
carried (or in one run where the model's time axis is dynamic), zeros before the
first sample as the only past. One mono signal in, its
output out (a plugin runs a mono model once per host channel)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MODELS = Path(__file__).resolve().parent / "models"
SAMPLE_RATE = 48000


def session_of(name: str):
    import onnxruntime

    return onnxruntime.InferenceSession(str(MODELS / f"{name}.onnx"), providers=["CPUExecutionProvider"])


def lstm_reference(x: np.ndarray) -> np.ndarray:
    session = session_of("lstm_amp")
    hidden = session.get_inputs()[1].shape[2]
    h = np.zeros((1, 1, hidden), np.float32)
    c = np.zeros((1, 1, hidden), np.float32)
    out = []
    for start in range(0, len(x) - 63, 64):
        y, h, c = session.run(None, {"x": x[start:start + 64].reshape(1, 64, 1), "h": h, "c": c})
        out.append(y.reshape(-1))
    return np.concatenate(out)


def wavenet_reference(x: np.ndarray) -> np.ndarray:
    """One run over the whole signal (the model's time axis is dynamic: T in, T - 4092
    out), so no frame boundary of the plugin's can hide in the reference."""
    session = session_of("wavenet")
    context = int(session.get_outputs()[0].shape[2].split("-")[1])   # 'T - 4092'
    padded = np.concatenate([np.zeros(context, np.float32), x])   # zeros before the first sample only
    (y,) = session.run(None, {"x": padded.reshape(1, 1, -1)})
    return y.reshape(-1)


def gru_reference(x: np.ndarray) -> np.ndarray:
    session = session_of("gru_frame576")
    state = np.zeros(session.get_inputs()[1].shape, np.float32)
    rate = np.array([SAMPLE_RATE], np.int64)
    out = []
    for start in range(0, len(x) - 575, 576):
        y, state, _level = session.run(None, {"audio": x[start:start + 576].reshape(1, 576),
                                              "state": state, "sample_rate": rate})
        out.append(y.reshape(-1))
    return np.concatenate(out)


REFERENCES = {"lstm_amp": lstm_reference, "wavenet": wavenet_reference, "gru_frame576": gru_reference}


def streaming_reference(model: str, audio: np.ndarray) -> np.ndarray:
    """channels × samples through `model`, each channel on its own (a plugin runs a mono
    model once per host channel, each with its own state and past); zeros where the
    reference has no whole frame."""
    out = np.zeros_like(audio)
    for channel in range(audio.shape[0]):
        y = REFERENCES[model](audio[channel])
        out[channel, :len(y)] = y
    return out


def converted_reference(model: str, audio: np.ndarray, host_rate: int, model_rate: int,
                        converter: str = "sinc_medium") -> np.ndarray:
    """channels × samples at host_rate through a model trained at model_rate: each
    channel converted by libsamplerate's Python binding (`converter`: its name of the
    plugin's resample quality), streamed through `model` there, and converted back.
    libsamplerate's output is aligned with its input, so this has no delay of its own."""
    import samplerate

    out = np.zeros_like(audio)
    for channel in range(audio.shape[0]):
        down = samplerate.resample(audio[channel], model_rate / host_rate, converter).astype(np.float32)
        back = samplerate.resample(REFERENCES[model](down), host_rate / model_rate, converter).astype(np.float32)
        length = min(len(back), out.shape[1])
        out[channel, :length] = back[:length]
    return out

