"""Audio files and model references shared by the plugin tests."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


def write_wav(path: Path, audio: np.ndarray, rate: int, *, int16: bool = False) -> None:
    """A plain WAV file (float32 or 16-bit PCM), written here so the host's reader is
    tested against the format itself, not against a library's writer."""
    channels, frames = audio.shape
    if int16:
        body = np.clip(np.round(audio.T * 32767.0), -32768, 32767).astype("<i2").tobytes()
        fmt, bits = 1, 16
    else:
        body = audio.T.astype("<f4").tobytes()
        fmt, bits = 3, 32
    block_align = channels * bits // 8
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(body), b"WAVE", b"fmt ", 16, fmt,
                         channels, rate, rate * block_align, block_align, bits, b"data", len(body))
    path.write_bytes(header + body)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    # pedalboard (libsndfile-free JUCE reader) reads what the host wrote.
    from pedalboard.io import AudioFile

    with AudioFile(str(path)) as f:
        return f.read(f.frames), int(f.samplerate)


def onnx_reference(model: Path, audio: np.ndarray, frame: int) -> np.ndarray:
    """onnxruntime's output for each channel, in frames of `frame` samples, zero-padded."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    out = np.empty_like(audio)
    for channel in range(audio.shape[0]):
        padded = np.zeros(-(-audio.shape[1] // frame) * frame, dtype=np.float32)
        padded[:audio.shape[1]] = audio[channel]
        frames = [session.run(None, {"audio": padded[i:i + frame].reshape(1, frame)})[0].ravel()
                  for i in range(0, padded.size, frame)]
        out[channel] = np.concatenate(frames)[:audio.shape[1]]
    return out


def tflite_reference(model: Path, audio: np.ndarray, frame: int) -> np.ndarray:
    """The LiteRT Python interpreter's output for each channel, in frames of `frame`
    samples, zero-padded (the frames are independent)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    index_in = interpreter.get_input_details()[0]["index"]
    index_out = interpreter.get_output_details()[0]["index"]
    out = np.empty_like(audio)
    for channel in range(audio.shape[0]):
        padded = np.zeros(-(-audio.shape[1] // frame) * frame, dtype=np.float32)
        padded[:audio.shape[1]] = audio[channel]
        frames = []
        for start in range(0, padded.size, frame):
            interpreter.set_tensor(index_in, padded[start:start + frame].reshape(1, frame))
            interpreter.invoke()
            frames.append(interpreter.get_tensor(index_out).ravel().copy())
        out[channel] = np.concatenate(frames)[:audio.shape[1]]
    return out
