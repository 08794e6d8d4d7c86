"""A classifier whose input is log-mel frames: what the features are and how often the model runs.

`new-plugin --kind classifier --features log-mel` attaches a `features:` block to
the model's input in plugin.yaml. The plugin computes the frames from the audio
(elkrt::LogMelFrontEnd: the numbers of librosa.feature.melspectrogram(center=False)
then power_to_db, or a natural log), keeps the last `frames` of them ([1, mel_bands,
frames], or [1, 1, mel_bands, frames]) and runs the model every `every` frames.
Bands and frames come from the input's shape; the rest from flags, and every value
not given is a guess that is printed. The checks mirror elkrt::logMelProblem.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

from elkbuild.errors import ConfigError, UsageError
from elkbuild.plugin.models import TensorInfo

FEATURE_TYPES = ("log-mel",)
SCALES = ("slaney", "htk")
NORMS = ("slaney", "none")
LOGS = ("db", "ln")
MAX_FFT = 16384
MAX_VALUES = 16384   # mel_bands * frames: one model input, copied per run


@dataclass(frozen=True)
class LogMel:
    """The `features:` block of plugin.yaml (keys as written there)."""

    input: str
    mel_bands: int
    frames: int
    sample_rate: int = 16000
    fft_size: int = 512
    hop: int = 160
    every: int = 1          # the model runs every `every` frames (1: every hop)
    min_hz: float = 0.0
    max_hz: float = 0.0     # 0: half the sample rate
    power: float = 2.0
    scale: str = "slaney"
    norm: str = "slaney"
    log: str = "db"
    floor: float = 1e-10    # amin of power_to_db, or the offset of log(S + floor)
    type: str = "log-mel"


@dataclass(frozen=True)
class FeatureFlags:
    """new-plugin's --features flags; None: not given (kept from plugin.yaml or guessed)."""

    features: str | None = None
    sample_rate: int | None = None
    fft_size: int | None = None
    hop: int | None = None
    mel_bands: int | None = None
    frames: int | None = None
    every: int | None = None
    min_hz: float | None = None
    max_hz: float | None = None
    power: float | None = None
    scale: str | None = None
    norm: str | None = None
    log: str | None = None
    floor: float | None = None

    def given(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name != "features" and getattr(self, f.name) is not None}


FLAG = {"sample_rate": "--sample-rate", "fft_size": "--fft-size", "hop": "--hop",
        "mel_bands": "--mel-bands", "frames": "--frames", "every": "--every", "min_hz": "--min-hz",
        "max_hz": "--max-hz", "power": "--power", "scale": "--mel-scale", "norm": "--mel-norm",
        "log": "--log", "floor": "--floor"}
GUESSED = ("sample_rate", "fft_size", "hop", "every")   # said when not given


def problem(f: LogMel) -> tuple[str, str] | None:
    """(field, why) for settings the front end cannot use, else None."""
    nyquist = f.sample_rate / 2
    checks = (
        ("sample_rate", 1000 <= f.sample_rate <= 768000, "must be 1000..768000 Hz"),
        ("fft_size", 16 <= f.fft_size <= MAX_FFT and f.fft_size & (f.fft_size - 1) == 0,
         f"must be a power of two, 16..{MAX_FFT}"),
        ("hop", 1 <= f.hop <= f.fft_size, f"must be 1..fft_size ({f.fft_size})"),
        ("mel_bands", 1 <= f.mel_bands <= f.fft_size // 2 + 1, f"must be 1..fft_size / 2 + 1 ({f.fft_size // 2 + 1})"),
        ("frames", f.frames >= 1, "must be at least 1"),
        ("every", 1 <= f.every <= 10000, "must be 1..10000 frames"),
        ("min_hz", 0 <= f.min_hz < (f.max_hz or nyquist), "must be at least 0 and below max_hz"),
        ("max_hz", 0 <= f.max_hz <= nyquist, f"must be 0 (half the rate) .. {nyquist:g} Hz"),
        ("power", f.power in (1.0, 2.0), "must be 1 (magnitude) or 2 (power)"),
        ("scale", f.scale in SCALES, f"must be {' or '.join(SCALES)}"),
        ("norm", f.norm in NORMS, f"must be {' or '.join(NORMS)}"),
        ("log", f.log in LOGS, "must be db (power_to_db) or ln (log(S + floor))"),
        ("floor", f.floor > 0, "must be above 0"),
    )
    for name, fine, why in checks:
        if not fine:
            return name, why
    return None


def _axes(tensor: TensorInfo) -> tuple[int, int] | None:
    """The mel and time axes of [1, bands, frames] or [1, 1, bands, frames]."""
    shape = tensor.fixed_shape
    if len(shape) == 3 and shape[0] == 1:
        return 1, 2
    if len(shape) == 4 and shape[0] == 1 and shape[1] == 1:
        return 2, 3
    return None


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def fit_log_mel(model: Path, tensor: TensorInfo, flags: FeatureFlags, kept: LogMel | None = None,
                say: Callable[[str], None] = lambda _: None) -> LogMel:
    """The features for `tensor` (the classifier's input) from the flags, plugin.yaml's
    old block, then guesses (said); a UsageError naming the tensor and flag."""
    where = f"input {tensor.name!r} {_shape_text(tensor.shape)}"
    axes = _axes(tensor)
    if axes is None:
        raise UsageError(f"{model}: {where}: log-mel features need [1, mel_bands, frames] or "
                         "[1, 1, mel_bands, frames]",
                         "export the model with the mel axis before the time axis, or drop --features")
    bands, frames = (int(tensor.fixed_shape[a]) for a in axes)
    for name, found in (("mel_bands", bands), ("frames", frames)):
        given = getattr(flags, name)
        if given is not None and given != found:
            raise UsageError(f"{model}: {where}: {FLAG[name]} {given} but the model takes {found} "
                             f"({'its mel axis' if name == 'mel_bands' else 'its time axis'})",
                             f"give {FLAG[name]} {found}, or export the model for {given}")
    base = kept if kept is not None and kept.input == tensor.name else None
    values = {**(asdict(base) if base else {}), **flags.given(),
              "input": tensor.name, "mel_bands": bands, "frames": frames}
    values.setdefault("hop", max(1, int(values.get("sample_rate", LogMel.sample_rate)) // 100))
    features = LogMel(**values)
    if bands * frames > MAX_VALUES:
        raise UsageError(f"{model}: {where}: {bands} x {frames} log-mel values is more than {MAX_VALUES}",
                         "export the model for fewer frames or bands")
    bad = problem(features)
    if bad:
        raise UsageError(f"{model}: {where}: {FLAG[bad[0]]} {getattr(features, bad[0])!r} {bad[1]}",
                         f"give {FLAG[bad[0]]} as the model was trained")
    guessed = [f"{FLAG[name]} {getattr(features, name)}" for name in GUESSED
               if name not in flags.given() and not base]
    say(f"{where}: log-mel features, {bands} mel bands (axis {axes[0]}) x {frames} frames (axis {axes[1]}), "
        f"{features.frames * features.hop / features.sample_rate * 1000:.0f} ms seen, a run every "
        f"{features.every} frames")
    if guessed:
        say(f"{where}: guessed {' '.join(guessed)}: give the values the model was trained with")
    return features


def to_yaml(features: LogMel) -> dict[str, Any]:
    data = asdict(features)
    return {"type": data.pop("type"), **data}


def from_yaml(data: Any, source: Path) -> LogMel:
    """plugin.yaml's `features:` block, each problem naming features.<key>."""
    if not isinstance(data, dict):
        raise ConfigError(source, "features", data, "must be a mapping (see `invoke new-plugin --help`)")
    if data.get("type") not in FEATURE_TYPES:
        raise ConfigError(source, "features.type", data.get("type"), f"must be {', '.join(FEATURE_TYPES)}")
    known = {f.name: f for f in fields(LogMel)}
    for key in data:
        if key not in known:
            raise ConfigError(source, f"features.{key}", data[key], f"is not a key; keys: {', '.join(known)}")
    for key in ("input", "mel_bands", "frames"):
        if key not in data:
            raise ConfigError(source, f"features.{key}", None, "is missing", "run `invoke new-plugin --force`")
    values: dict[str, Any] = {}
    for key, value in data.items():
        kind = type(getattr(LogMel, key, "")) if key not in ("input", "mel_bands", "frames") else \
            (str if key == "input" else int)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ConfigError(source, f"features.{key}", value, f"must be a{'n' if kind is int else ''} "
                              f"{ {int: 'integer', float: 'number', str: 'text'}[kind] }")
        values[key] = value
    features = LogMel(**values)
    bad = problem(features)
    if bad:
        raise ConfigError(source, f"features.{bad[0]}", getattr(features, bad[0]), bad[1])
    if features.mel_bands * features.frames > MAX_VALUES:
        raise ConfigError(source, "features.frames", features.frames,
                          f"mel_bands x frames must be at most {MAX_VALUES}")
    return features


def parse_feature_flags(**given: Any) -> FeatureFlags:
    """The command line's text values as FeatureFlags; a bad number names its flag."""
    kinds = {f.name: f.type for f in fields(FeatureFlags)}
    values: dict[str, Any] = {}
    for name, text in given.items():
        if text is None or name == "features":
            values[name] = text
            continue
        cast = int if "int" in str(kinds[name]) else float if "float" in str(kinds[name]) else str
        try:
            values[name] = cast(text)
        except ValueError:
            raise UsageError(f"{FLAG[name]} {text!r} is not a{'n integer' if cast is int else ' number'}",
                             f"e.g. {FLAG[name]} {getattr(LogMel, name, 1)}") from None
    return FeatureFlags(**values)
