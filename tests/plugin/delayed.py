"""Comparing a plugin's output with a reference when the plugin reports latency."""

from __future__ import annotations

import numpy as np


def delayed_error(out: np.ndarray, expected: np.ndarray, latency: int) -> float:
    """Max abs difference between `out` and `expected` delayed by `latency` samples
    (zeros before it: the plugin must not output anything but silence there)."""
    assert 0 <= latency < out.shape[-1], f"latency {latency} for {out.shape[-1]} samples"
    frames = out.shape[-1]
    shifted = np.zeros_like(expected)
    shifted[..., latency:] = expected[..., :frames - latency]
    return float(np.max(np.abs(out - shifted)))
