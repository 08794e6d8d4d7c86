"""What each tensor of an effect's model is for: the roles `new-plugin` assigns.

A real audio model has more than one input and output: audio in and out (with a
time axis and maybe a channel axis), recurrent state fed from an output back into
an input (h/h_out, h0/hn, state/state_out...), constants fixed at render time (an
int64 sample rate), and extra outputs kept but not heard. Past context is no
tensor of its own: the audio input is longer than the output by the receptive
field - 1. Dynamic dimensions are fixed here, from flags or a printed default; a
dynamic time axis gives the model `--frame` samples out and takes the past its
output's length names ('T - 4092') on top.

`assign_roles` is pure: every guess goes into `ModelRoles.guesses` (new-plugin
prints them) and every refusal is a `RoleError`, one line naming the tensor, what
could not be decided and the flag that decides it. The result is written to
plugin.yaml (`tensors:`), read back by `roles_from_yaml`, and given to the plugin
in the runtime's own description format (`roles_text`, runtime/.../model_description.h).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

from elkbuild.errors import ElkbuildError, UsageError
from elkbuild.plugin.models import ModelInfo, TensorInfo

DEFAULT_FRAME = 64
"""A dynamic time axis gives this many samples per run unless --frame says otherwise."""
FLOAT = "float32"
INTEGER = ("int32", "int64")
ROLES = ("audio", "state", "constant", "extra")


class RoleError(UsageError):
    """A tensor whose role or shape cannot be decided; names the tensor and the flag."""


@dataclass(frozen=True)
class RoleFlags:
    """What the user decided on the command line (new-plugin's flags)."""

    frame: int | None = None                               # --frame N
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)   # --shape NAME=1,64
    states: Mapping[str, str] = field(default_factory=dict)               # --state IN=OUT
    constants: Mapping[str, float] = field(default_factory=dict)          # --constant NAME=V
    audio_in: str | None = None                            # --audio-in NAME
    audio_out: str | None = None                           # --audio-out NAME
    sample_rate: float | None = None                       # --sample-rate HZ


@dataclass(frozen=True)
class Tensor:
    name: str
    direction: str                    # input | output
    role: str                         # one of ROLES
    dtype: str
    shape: tuple[int, ...]            # every dimension fixed
    time_axis: int | None = None      # audio
    channel_axis: int | None = None   # audio, None: mono
    state_from: str | None = None     # a state input: the output that feeds it
    value: float | None = None        # a constant


@dataclass(frozen=True)
class ModelRoles:
    tensors: tuple[Tensor, ...]
    sample_rate: float | None = None
    guesses: tuple[str, ...] = ()

    def audio(self, direction: str) -> Tensor:
        return next(t for t in self.tensors if t.role == "audio" and t.direction == direction)

    @property
    def frame(self) -> int:
        """Samples the model gives per run: the audio output's time length."""
        out = self.audio("output")
        return out.shape[out.time_axis]

    @property
    def receptive_field(self) -> int:
        audio_in = self.audio("input")
        return audio_in.shape[audio_in.time_axis] - self.frame + 1


# ---- assignment ---------------------------------------------------------------------

def _stem(name: str) -> tuple[str, str]:
    """A name reduced to what a state input and its output share: h0/hn/h_out -> h,
    state1/state_out1/new_state1 -> state (digits kept apart)."""
    text = re.sub(r"[:/.]\d*$", "", name.lower())         # TFLite's 'serving_default_h:0'
    digits = re.search(r"\d*$", text).group()
    text = text[:len(text) - len(digits)] if digits else text
    text = re.sub(r"^(serving_default_|statefulpartitionedcall_)", "", text)
    text = re.sub(r"^(next|new|prev|in|out|input|output)_", "", text)
    text = re.sub(r"_?(out|in|next|new|prev|output|input)$", "", text)
    if not text:  # 'input' and 'output' are torch's defaults for audio, never a pair
        return name.lower(), ""
    single = re.fullmatch(r"([a-z])(0|n)", text)            # torch's h0 -> hn
    if single:
        return single.group(1), digits
    if digits == "0" and re.fullmatch(r"[a-z]", text):
        return text, ""
    return text, digits


def _symbol_lengths(info: ModelInfo, flags: RoleFlags, frame: int) -> dict[str, int]:
    """The length of each named dynamic input dimension: what --shape gave it, else the
    frame plus the past an output's length says the model consumes. torch's exporter
    names an output's length after the input's: 'T - 4092' is 4092 samples of context,
    so `--frame N` means N samples out and N + 4092 in."""
    lengths: dict[str, int] = {}
    for t in info.inputs:
        given = flags.shapes.get(t.name)
        for axis, symbol in enumerate(t.symbols):
            if symbol and given is not None and axis < len(given):
                lengths.setdefault(symbol, given[axis])
    context: dict[str, int] = {}
    for t in info.outputs:
        for symbol in t.symbols:
            match = re.fullmatch(r"\s*(\w+)\s*-\s*(\d+)\s*", symbol or "")
            if match:
                name, past = match.group(1), int(match.group(2))
                context[name] = max(context.get(name, 0), past)
    for t in info.inputs:
        for axis, symbol in enumerate(t.symbols):
            if symbol and axis > 0:
                lengths.setdefault(symbol, frame + context.get(symbol, 0))
    return lengths


def _symbol_length(symbol: str | None, lengths: Mapping[str, int]) -> int | None:
    """A dimension named 'T', 'T - K' or 'T + K' after an input's, in samples."""
    match = re.fullmatch(r"\s*(\w+)\s*(?:([-+])\s*(\d+))?\s*", symbol or "")
    if not match or match.group(1) not in lengths:
        return None
    offset = int(match.group(3) or 0) * (-1 if match.group(2) == "-" else 1)
    return lengths[match.group(1)] + offset


def _fix_shape(tensor: TensorInfo, direction: str, flags: RoleFlags, guesses: list[str],
               time_guess: int | None, lengths: Mapping[str, int]) -> tuple[int, ...]:
    given = flags.shapes.get(tensor.name)
    if given is not None:
        if len(given) != len(tensor.shape) or any(d is not None and d != g for d, g in zip(tensor.shape, given)):
            raise RoleError(f"{direction} {tensor.name!r} has the shape {_shape(tensor.shape)}; "
                            f"--shape {tensor.name}={','.join(map(str, given))} does not fit it",
                            f"give --shape {tensor.name}= with {len(tensor.shape)} dimensions, "
                            "changing only the dynamic (?) ones")
        return tuple(given)
    fixed = []
    for axis, dim in enumerate(tensor.shape):
        if dim is not None:
            fixed.append(dim)
        elif axis == 0:
            fixed.append(1)
            guesses.append(f"{direction} {tensor.name}: dynamic batch dimension taken as 1")
        elif time_guess is not None and axis == _longest_axis(tensor.shape):
            symbol = tensor.symbol(axis)
            length = _symbol_length(symbol, lengths)
            length = time_guess if length is None else length
            if length < 1:
                raise RoleError(f"{direction} {tensor.name!r} {_shape(tensor.shape)}: its time length "
                                f"{symbol!r} is {length} samples for the input's length",
                                "give a longer input with --frame or --shape")
            fixed.append(length)
            named = f" ({symbol!r})" if symbol else ""
            guesses.append(f"{direction} {tensor.name}: dynamic time dimension {axis}{named} taken as "
                           f"{length} samples (--frame N to choose)")
        else:
            raise RoleError(f"{direction} {tensor.name!r} {_shape(tensor.shape)}: dimension {axis} is "
                            "dynamic and is not its batch or time",
                            f"fix it with --shape {tensor.name}="
                            + ",".join("N" if d is None else str(d) for d in tensor.shape))
    return tuple(fixed)


def _longest_axis(shape: tuple[int | None, ...]) -> int:
    """The time axis: the longest fixed one, or the dynamic non-batch one."""
    dynamic = [axis for axis, d in enumerate(shape) if d is None and axis > 0]
    if dynamic:
        return dynamic[-1]
    return max(range(len(shape)), key=lambda axis: (shape[axis] or 0, axis))


def _audio_axes(tensor: TensorInfo, shape: tuple[int, ...], direction: str,
                like: Tensor | None = None) -> tuple[int, int | None]:
    if not shape:
        raise RoleError(f"{direction} {tensor.name!r} is a scalar, which cannot carry audio",
                        f"give the audio {direction} with --audio-{direction[:-3] if direction == 'output' else 'in'} NAME")
    if like is not None and len(shape) == len(like.shape):
        time = like.time_axis
    else:
        longest = max(shape)
        candidates = [axis for axis, d in enumerate(shape) if d == longest]
        dynamic = [axis for axis in candidates if tensor.shape[axis] is None]
        if len(candidates) > 1 and len(dynamic) != 1 and longest > 1:
            raise RoleError(f"{direction} {tensor.name!r} {_shape(shape)}: axes {candidates} are equally "
                            "long; which one is time cannot be told",
                            f"give its time axis a unique length with --shape {tensor.name}=...")
        time = dynamic[0] if len(dynamic) == 1 else candidates[-1]
    others = [axis for axis, d in enumerate(shape) if axis != time and d > 1]
    if not others:
        return time, None
    if len(others) == 1 and shape[others[0]] <= 8:
        return time, others[0]
    raise RoleError(f"{direction} {tensor.name!r} {_shape(shape)}: besides time (axis {time}) it has "
                    f"axes {others} longer than 1; an audio tensor has at most one channel axis of up to 8",
                    f"if it is not audio, say which is with --audio-{'in' if direction == 'input' else 'out'} NAME")


def assign_roles(info: ModelInfo, flags: RoleFlags = RoleFlags()) -> ModelRoles:
    """Every input and output of `info` with its role; see the module docstring."""
    guesses: list[str] = []
    names_in = {t.name for t in info.inputs}
    names_out = {t.name for t in info.outputs}
    for flag, names, direction in (("--audio-in", names_in, "input"), ("--audio-out", names_out, "output")):
        wanted = flags.audio_in if flag == "--audio-in" else flags.audio_out
        if wanted is not None and wanted not in names:
            raise RoleError(f"{flag} {wanted!r}: the model has no {direction} of that name",
                            f"its {direction}s are {', '.join(sorted(names))}")
    for name in (*flags.shapes, *flags.constants):
        if name not in names_in | names_out:
            raise RoleError(f"{name!r} (in --shape or --constant) is no tensor of the model",
                            f"its tensors are {', '.join(sorted(names_in | names_out))}")
    for state_in, state_out in flags.states.items():
        if state_in not in names_in or state_out not in names_out:
            raise RoleError(f"--state {state_in}={state_out}: the model has no input {state_in!r} "
                            f"or no output {state_out!r}",
                            f"inputs: {', '.join(sorted(names_in))}; outputs: {', '.join(sorted(names_out))}")

    # Shapes first: the audio's dynamic time axis takes --frame; others are refused.
    # A tensor whose name pairs with one on the other side is state, and state has no time.
    frame = flags.frame or DEFAULT_FRAME
    stems_in, stems_out = {_stem(t.name) for t in info.inputs}, {_stem(t.name) for t in info.outputs}
    stateful = set(flags.states) | set(flags.states.values())
    lengths = _symbol_lengths(info, flags, frame)
    shapes: dict[tuple[str, str], tuple[int, ...]] = {}
    for direction, tensors, other in (("input", info.inputs, stems_out), ("output", info.outputs, stems_in)):
        for t in tensors:
            audio_like = t.dtype == FLOAT and t.name not in stateful and (
                _stem(t.name) not in other or t.name in (flags.audio_in, flags.audio_out))
            shapes[(direction, t.name)] = _fix_shape(t, direction, flags, guesses,
                                                     frame if audio_like else None, lengths)

    # State: an input fed by the output of the same stem and shape (or --state).
    pairs: dict[str, str] = dict(flags.states)
    for t in info.inputs:
        if t.name in pairs or t.name in flags.constants or t.name == flags.audio_in:
            continue
        matches = [o.name for o in info.outputs
                   if _stem(o.name) == _stem(t.name) and o.name != t.name and o.dtype == t.dtype
                   and shapes[("output", o.name)] == shapes[("input", t.name)]
                   and o.name not in pairs.values() and o.name != flags.audio_out]
        if len(matches) > 1:
            raise RoleError(f"input {t.name!r}: outputs {', '.join(matches)} could each feed it as state",
                            f"choose with --state {t.name}={matches[0]}")
        if matches:
            pairs[t.name] = matches[0]
            guesses.append(f"input {t.name}: state, fed from output {matches[0]} "
                           f"(same name stem and shape {_shape(shapes[('input', t.name)])}; "
                           f"--state {t.name}=OUTPUT to change)")
    for state_in, state_out in pairs.items():
        if shapes[("input", state_in)] != shapes[("output", state_out)]:
            raise RoleError(f"--state {state_in}={state_out}: input {_shape(shapes[('input', state_in)])} "
                            f"and output {_shape(shapes[('output', state_out)])} differ in shape",
                            f"pair {state_in} with an output of its shape")

    tensors: list[Tensor] = []
    audio_candidates = []
    for t in info.inputs:
        shape = shapes[("input", t.name)]
        if t.name in pairs:
            tensors.append(Tensor(t.name, "input", "state", t.dtype, shape, state_from=pairs[t.name]))
        elif t.name in flags.constants:
            tensors.append(Tensor(t.name, "input", "constant", t.dtype, shape, value=flags.constants[t.name]))
        elif t.dtype in INTEGER:
            raise RoleError(f"input {t.name!r} ({t.dtype} {_shape(shape)}) is not audio or state: "
                            "its value cannot be guessed",
                            f"give it with --constant {t.name}=VALUE"
                            + (" (e.g. the sample rate)" if "rate" in t.name.lower() or t.name.lower() == "sr" else ""))
        elif t.dtype != FLOAT:
            raise RoleError(f"input {t.name!r} is {t.dtype}; plugins run float32 audio and state, "
                            "int32/int64 constants",
                            "export a float32 model (quantise inside, keep float32 in/out)")
        else:
            audio_candidates.append(t)
    if flags.audio_in is not None:
        audio_candidates = [t for t in audio_candidates if t.name == flags.audio_in]
        if not audio_candidates:
            raise RoleError(f"--audio-in {flags.audio_in!r} is already state or a constant",
                            "drop it from --state/--constant, or choose another --audio-in")
    if not audio_candidates:
        raise RoleError(f"{info.path.name}: no input is left for audio (every input is state or a constant)",
                        "say which input is audio with --audio-in NAME")
    if len(audio_candidates) > 1:
        names = ", ".join(t.name for t in audio_candidates)
        raise RoleError(f"inputs {names} could each be the audio input",
                        f"choose with --audio-in {audio_candidates[0].name}; give the others "
                        "--constant NAME=VALUE or --state NAME=OUTPUT")
    audio_in_info = audio_candidates[0]
    in_shape = shapes[("input", audio_in_info.name)]
    time_in, channel_in = _audio_axes(audio_in_info, in_shape, "input")
    audio_in = Tensor(audio_in_info.name, "input", "audio", FLOAT, in_shape, time_in, channel_in)
    tensors.insert(info.inputs.index(audio_in_info), audio_in)
    if flags.audio_in is None and len(info.inputs) > 1:
        guesses.append(f"input {audio_in.name}: audio, time axis {time_in}"
                       + (f", channel axis {channel_in}" if channel_in is not None else ", mono")
                       + " (--audio-in NAME to change)")

    fed = set(pairs.values())
    outputs = [o for o in info.outputs if o.name not in fed]
    for o in info.outputs:
        if o.name in fed:
            tensors.append(Tensor(o.name, "output", "state", o.dtype, shapes[("output", o.name)]))
    if flags.audio_out is not None:
        chosen = [o for o in outputs if o.name == flags.audio_out]
        if not chosen:
            raise RoleError(f"--audio-out {flags.audio_out!r} already feeds a state input",
                            "drop it from --state, or choose another --audio-out")
    else:
        floats = [o for o in outputs if o.dtype == FLOAT]
        # The audio output has the audio input's layout; a level or class head does not.
        alike = [o for o in floats if len(shapes[("output", o.name)]) == len(in_shape)
                 and all(a == b for axis, (a, b) in enumerate(zip(shapes[("output", o.name)], in_shape))
                         if axis != time_in)]
        chosen = alike if len(alike) == 1 else floats if len(floats) == 1 else alike or floats
        if not chosen:
            raise RoleError(f"{info.path.name}: no float32 output is left for audio",
                            "say which output is audio with --audio-out NAME")
        if len(chosen) > 1:
            raise RoleError(f"outputs {', '.join(o.name for o in chosen)} could each be the audio output",
                            f"choose with --audio-out {chosen[0].name}")
        if len(outputs) > 1:
            guesses.append(f"output {chosen[0].name}: audio (--audio-out NAME to change)")
    audio_out_info = chosen[0]
    out_shape = shapes[("output", audio_out_info.name)]
    like = replace(audio_in, shape=in_shape)
    time_out, channel_out = _audio_axes(audio_out_info, out_shape, "output", like)
    if audio_out_info.dtype != FLOAT:
        raise RoleError(f"output {audio_out_info.name!r} is {audio_out_info.dtype}; audio is float32",
                        "export the model with a float32 audio output")
    for o in outputs:
        if o is audio_out_info:
            tensors.append(Tensor(o.name, "output", "audio", FLOAT, out_shape, time_out, channel_out))
        else:
            tensors.append(Tensor(o.name, "output", "extra", o.dtype, shapes[("output", o.name)]))
            guesses.append(f"output {o.name}: extra (kept, not heard)")

    channels_in = in_shape[channel_in] if channel_in is not None else 1
    channels_out = out_shape[channel_out] if channel_out is not None else 1
    if channels_in != channels_out:
        raise RoleError(f"input {audio_in.name!r} {_shape(in_shape)} has {channels_in} channels but output "
                        f"{audio_out_info.name!r} {_shape(out_shape)} has {channels_out}",
                        "an effect gives as many channels as it takes; check --audio-in/--audio-out")
    length_in, length_out = in_shape[time_in], out_shape[time_out]
    if length_out > length_in:
        raise RoleError(f"output {audio_out_info.name!r} gives {length_out} samples per run but input "
                        f"{audio_in.name!r} takes only {length_in}",
                        f"give the input's time length with --shape {audio_in.name}=... or --frame")
    if length_in > length_out:
        guesses.append(f"input {audio_in.name}: {length_in} samples in, {length_out} out: a receptive "
                       f"field of {length_in - length_out + 1} samples (past context streamed from a ring buffer)")
    for name in flags.constants:
        if name in names_out:
            raise RoleError(f"--constant {name}: {name!r} is an output; only inputs can be constants",
                            f"drop --constant {name}")
    if flags.sample_rate is None:
        guesses.append("sample rate: any host rate is taken (--sample-rate HZ for a model trained at one rate)")
    order = {("input", t.name): i for i, t in enumerate(info.inputs)}
    order.update({("output", t.name): len(order) + i for i, t in enumerate(info.outputs)})
    tensors.sort(key=lambda t: order[(t.direction, t.name)])
    return ModelRoles(tuple(tensors), flags.sample_rate, tuple(guesses))


OutputShapes = Callable[[dict[str, tuple[tuple[int, ...], str, float]]], dict[str, tuple[int, ...]]]
"""One run of the model over constant inputs (name -> shape, dtype, value): its output shapes."""
LONGEST_PROBE = 1 << 20


def measure_context(info: ModelInfo, flags: RoleFlags, roles: ModelRoles, run: OutputShapes) -> ModelRoles:
    """`roles` checked by running the model once, for an audio output whose dynamic time
    length has a name that says nothing (torch's older exporter: 'T' in, 'T_out' out).
    A convolutional model gives fewer samples than it takes: the difference is its past
    context, and the input grows by it so the output keeps --frame samples. An input
    shorter than the receptive field fails to run, so the probe doubles it until it runs."""
    audio_in, audio_out = roles.audio("input"), roles.audio("output")
    out_info = next(t for t in info.outputs if t.name == audio_out.name)
    axis = audio_out.time_axis
    named = _symbol_length(out_info.symbol(axis), _symbol_lengths(info, flags, flags.frame or DEFAULT_FRAME)) is not None
    if out_info.shape[axis] is not None or named or {audio_in.name, audio_out.name} & set(flags.shapes):
        return roles
    inputs = {t.name: (t.shape, t.dtype, t.value or 0.0) for t in roles.tensors if t.direction == "input"}
    length = audio_in.shape[audio_in.time_axis]
    while True:
        inputs[audio_in.name] = (_with_time(audio_in, length), FLOAT, 0.0)
        try:
            given = run(inputs)[audio_out.name]
            break
        except ElkbuildError:
            if length * 2 > LONGEST_PROBE:
                raise
            length *= 2
    if len(given) != len(audio_out.shape):
        raise RoleError(f"output {audio_out.name!r}: one run gave the shape {_shape(given)}, not one of "
                        f"{len(audio_out.shape)} dimensions like {_shape(out_info.shape)}",
                        f"give its shape with --shape {audio_out.name}=...")
    context = length - given[audio_out.time_axis]
    if context == roles.receptive_field - 1:
        return roles
    fixed = {audio_in.name: _with_time(audio_in, roles.frame + context),
             audio_out.name: _with_time(audio_out, roles.frame)}
    measured = assign_roles(info, replace(flags, shapes={**flags.shapes, **fixed}))
    note = (f"output {audio_out.name}: one run of {length} samples gave {given[audio_out.time_axis]}: "
            f"{context} samples of past context (--shape {audio_in.name}=... --shape {audio_out.name}=... to change)")
    return replace(measured, guesses=(note, *measured.guesses))


def _with_time(tensor: Tensor, length: int) -> tuple[int, ...]:
    """An audio tensor's shape with its time axis `length` long."""
    axis = tensor.time_axis
    return tensor.shape[:axis] + (length,) + tensor.shape[axis + 1:]


def _shape(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


# ---- plugin.yaml and the runtime's format ---------------------------------------------

def roles_to_yaml(roles: ModelRoles) -> dict[str, Any]:
    """The `model_roles:` section of plugin.yaml."""
    tensors = []
    for t in roles.tensors:
        entry: dict[str, Any] = {"name": t.name, "direction": t.direction, "role": t.role,
                                 "dtype": t.dtype, "shape": list(t.shape)}
        if t.role == "audio":
            entry["time_axis"] = t.time_axis
            entry["channel_axis"] = t.channel_axis
        if t.state_from is not None:
            entry["from"] = t.state_from
        if t.value is not None:
            entry["value"] = _plain(t.value)
        tensors.append(entry)
    return {"sample_rate": None if roles.sample_rate is None else _plain(roles.sample_rate),
            "tensors": tensors}


def _plain(number: float) -> float | int:
    """48000, not 48000.0, in plugin.yaml."""
    return int(number) if float(number).is_integer() else float(number)


def roles_from_yaml(data: Any, where: str) -> ModelRoles:
    """plugin.yaml's `model_roles:` back into ModelRoles; problems name `where` and the key."""
    def fail(problem: str) -> RoleError:
        return RoleError(f"{where}: model_roles {problem}", "fix it or run `invoke new-plugin --force`")

    if not isinstance(data, dict) or not isinstance(data.get("tensors"), list):
        raise fail("must hold a tensors: list")
    tensors = []
    for index, entry in enumerate(data["tensors"]):
        if not isinstance(entry, dict) or entry.get("role") not in ROLES \
                or entry.get("direction") not in ("input", "output"):
            raise fail(f"tensors[{index}] needs a name, direction input|output and role {'|'.join(ROLES)}")
        try:
            tensors.append(Tensor(str(entry["name"]), entry["direction"], entry["role"],
                                  str(entry.get("dtype", FLOAT)), tuple(int(d) for d in entry["shape"]),
                                  entry.get("time_axis"), entry.get("channel_axis"), entry.get("from"),
                                  None if entry.get("value") is None else float(entry["value"])))
        except (KeyError, TypeError, ValueError):
            raise fail(f"tensors[{index}] ({entry.get('name')}): shape must be a list of integers") from None
    audio = [(t.direction, t.time_axis) for t in tensors if t.role == "audio"]
    if sorted(d for d, _ in audio) != ["input", "output"] or any(axis is None for _, axis in audio):
        raise fail("must have one audio input and one audio output, each with a time_axis")
    rate = data.get("sample_rate")
    return ModelRoles(tuple(tensors), None if rate is None else float(rate))


def roles_text(roles: ModelRoles) -> str:
    """The runtime's model description (ModelDescription::parse)."""
    lines = []
    for t in roles.tensors:
        words = [t.direction, t.name, t.role]
        if t.role == "audio":
            words.append(f"time={t.time_axis}")
            if t.channel_axis is not None:
                words.append(f"channel={t.channel_axis}")
        if t.role == "state" and t.direction == "input":
            words.append(f"from={t.state_from}")
        if t.role == "constant":
            words.append(f"value={t.value:g}")
        if t.direction == "input":
            words.append("shape=" + ",".join(str(d) for d in t.shape))
        lines.append(" ".join(words))
    if roles.sample_rate:
        lines.append(f"sample_rate {roles.sample_rate:g}")
    return "\n" + "\n".join(lines) + "\n"


# ---- flags --------------------------------------------------------------------------

def parse_role_flags(*, frame: int | str | None = None, shapes: list[str] = (), states: list[str] = (),
                     constants: list[str] = (), audio_in: str | None = None,
                     audio_out: str | None = None, sample_rate: float | str | None = None) -> RoleFlags:
    """new-plugin's NAME=VALUE flags into RoleFlags; a bad one is a UsageError naming it."""
    def pairs(flag: str, items: list[str]) -> dict[str, str]:
        found = {}
        for item in items:
            name, sep, value = item.partition("=")
            if not sep or not name or not value:
                raise UsageError(f"{flag} {item!r} is not NAME=VALUE", f"e.g. {flag} {name or 'h'}=...")
            found[name] = value
        return found

    def number(flag: str, text: Any, cast: type) -> Any:
        try:
            value = cast(text)
        except (TypeError, ValueError):
            raise UsageError(f"{flag} {text!r} is not a number", f"e.g. {flag} 64") from None
        if cast is int and value < 1 or cast is float and value <= 0 and flag != "--constant":
            raise UsageError(f"{flag} {text!r} must be positive", f"e.g. {flag} 64")
        return value

    shape_values = {}
    for name, text in pairs("--shape", list(shapes)).items():
        try:
            shape_values[name] = tuple(int(d) for d in text.split(","))
        except ValueError:
            raise UsageError(f"--shape {name}={text!r}: dimensions must be integers", f"e.g. --shape {name}=1,64,1") from None
        if any(d < 1 for d in shape_values[name]):
            raise UsageError(f"--shape {name}={text!r}: every dimension must be at least 1", f"e.g. --shape {name}=1,64,1")
    constant_values = {}
    for name, text in pairs("--constant", list(constants)).items():
        try:
            constant_values[name] = float(text)
        except ValueError:
            raise UsageError(f"--constant {name}={text!r} is not a number", f"e.g. --constant {name}=48000") from None
    return RoleFlags(frame=None if frame in (None, "", 0) else number("--frame", frame, int),
                     shapes=shape_values, states=pairs("--state", list(states)), constants=constant_values,
                     audio_in=audio_in or None, audio_out=audio_out or None,
                     sample_rate=None if sample_rate in (None, "", 0) else number("--sample-rate", sample_rate, float))
