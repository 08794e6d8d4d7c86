"""Rigs: a musician's description of a Sushi setup, read from YAML and validated.

A rig names tracks and their plugin chains, the audio routing, MIDI, OSC, CV/gate,
timed events and the initial state of processors, in words close to the studio:

```yaml
description: Neural saturator on input 1, out to both speakers
host: {samplerate: 48000}
tracks:
  - name: guitar
    channels: 1                   # or `buses: N` for a multibus track
    inputs: [0]                   # engine channel per track channel
    outputs: [{engine_bus: 0}]    # or Sushi's own {engine_channel:, track_channel:}
    plugins:
      - project: NeuralSaturator  # a plugin project of this repo (plugins/<Name>/)
        parameters: {drive: 0.4}  # initial state, normalised 0..1 (Sushi 1.x)
midi:
  cc: [{cc: 74, processor: NeuralSaturator, parameter: drive}]
```

Every problem is reported once, as a ConfigError naming the rig file and the key path
(`tracks[1].plugins[0].name`). Whether the chosen Sushi version can express the rig
is decided when rendering (render.py), not here.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from elkbuild.config import read_yaml_file
from elkbuild.errors import MISSING, ConfigError
from elkbuild.plugin.identity import PluginIdentity, identity_path, known_projects, load_identity
from elkbuild.sushi.check import json_path

Key = tuple[str | int, ...]
PLUGIN_TYPES = ("internal", "vst2x", "vst3x", "lv2")
STATE_KEYS = ("parameters", "properties", "bypassed", "program")


# --------------------------------------------------------------------------- model

@dataclass(frozen=True)
class State:
    """Initial state of one processor (track or plugin): Sushi's `initial_state`."""

    where: Key
    parameters: dict[str, float] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    bypassed: bool | None = None
    program: int | None = None

    @property
    def empty(self) -> bool:
        return not (self.parameters or self.properties or self.bypassed is not None
                    or self.program is not None)

    def first_key(self) -> Key:
        for key in STATE_KEYS:
            if getattr(self, key) not in (None, {}):
                return self.where + (key,)
        return self.where


@dataclass(frozen=True)
class Connection:
    """One audio connection between the engine and a track."""

    where: Key
    kind: str            # "channel" | "bus"
    engine: int
    track: int
    bare: bool = False   # written as a bare engine channel number


@dataclass(frozen=True)
class Plugin:
    where: Key
    name: str
    type: str
    uid: str | None = None
    path: str | None = None
    uri: str | None = None
    project: PluginIdentity | None = None
    state: State | None = None


@dataclass(frozen=True)
class Track:
    where: Key
    name: str
    kind: str                      # "regular" | "pre" | "post"
    channels: int | None = None
    buses: int | None = None
    inputs: tuple[Connection, ...] = ()
    outputs: tuple[Connection, ...] = ()
    plugins: tuple[Plugin, ...] = ()
    state: State | None = None


@dataclass(frozen=True)
class MidiRoute:
    where: Key
    target: str                    # track or processor name
    port: int
    channel: int | str             # 0-15 or "all"
    raw: bool = False


@dataclass(frozen=True)
class CcMapping:
    where: Key
    processor: str
    parameter: str
    cc: int
    min: float
    max: float
    mode: str
    port: int
    channel: int | str


@dataclass(frozen=True)
class Midi:
    inputs: tuple[MidiRoute, ...] = ()
    outputs: tuple[MidiRoute, ...] = ()
    program_changes: tuple[MidiRoute, ...] = ()
    cc: tuple[CcMapping, ...] = ()
    clock_output: tuple[int, ...] | None = None
    where: Key = ("midi",)

    @property
    def empty(self) -> bool:
        return not (self.inputs or self.outputs or self.program_changes or self.cc
                    or self.clock_output is not None)


@dataclass(frozen=True)
class OscOutput:
    where: Key
    processor: str
    skip_parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class Osc:
    all_outputs: bool | None = None
    outputs: tuple[OscOutput, ...] | None = None


@dataclass(frozen=True)
class CvRoute:
    where: Key
    cv: int
    processor: str
    parameter: str


@dataclass(frozen=True)
class GateRoute:
    where: Key
    gate: int
    processor: str | None = None   # note_event mode
    note: int | None = None
    channel: int | None = None
    sync_ppq: int | None = None    # sync mode

    @property
    def mode(self) -> str:
        return "sync" if self.sync_ppq is not None else "note_event"


@dataclass(frozen=True)
class Event:
    where: Key
    time: float
    type: str
    processor: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Rig:
    name: str
    source: Path
    description: str
    host: dict[str, Any]
    tracks: tuple[Track, ...]
    pre_track: Track | None = None
    post_track: Track | None = None
    midi: Midi = Midi()
    osc: Osc | None = None
    cv_inputs: tuple[CvRoute, ...] = ()
    cv_outputs: tuple[CvRoute, ...] = ()
    gate_inputs: tuple[GateRoute, ...] = ()
    gate_outputs: tuple[GateRoute, ...] = ()
    events: tuple[Event, ...] = ()

    def all_tracks(self) -> list[Track]:
        """Tracks in the order Sushi creates them."""
        return [*self.tracks, *([self.pre_track] if self.pre_track else []),
                *([self.post_track] if self.post_track else [])]

    def states(self) -> list[tuple[str, State]]:
        """(processor name, state) of every processor that sets one, in rig order."""
        found = []
        for track in [*([self.pre_track] if self.pre_track else []), *self.tracks,
                      *([self.post_track] if self.post_track else [])]:
            if track.state and not track.state.empty:
                found.append((track.name, track.state))
            for plugin in track.plugins:
                if plugin.state and not plugin.state.empty:
                    found.append((plugin.name, plugin.state))
        return found

    @property
    def has_cv_control(self) -> bool:
        return bool(self.cv_inputs or self.cv_outputs or self.gate_inputs or self.gate_outputs)


# --------------------------------------------------------------------------- reading

class _Reader:
    """Typed access to the YAML tree; every failure names the rig file and key path."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def fail(self, key: Key, found: Any, allowed: str, hint: str | None = None) -> ConfigError:
        return ConfigError(self.source, json_path(key), found, allowed, hint)

    def mapping(self, node: Any, key: Key, allowed: Sequence[str],
                required: Sequence[str] = ()) -> dict[str, Any]:
        if node is None:
            node = {}
        if not isinstance(node, dict):
            raise self.fail(key, node, "must be a mapping of keys to values")
        for name in node:
            if not isinstance(name, str) or name not in allowed:
                close = difflib.get_close_matches(str(name), list(allowed), n=1)
                hint = f"did you mean {close[0]!r}?" if close else None
                raise self.fail(key + (str(name),), MISSING,
                                "is not a known key here; allowed: " + ", ".join(allowed), hint)
        for name in required:
            if name not in node:
                raise self.fail(key + (name,), MISSING, "is required")
        return node

    def items(self, node: Any, key: Key, minimum: int = 0) -> list[Any]:
        if node is None:
            node = []
        if not isinstance(node, list):
            raise self.fail(key, node, "must be a list (one `- ` entry per item)")
        if len(node) < minimum:
            raise self.fail(key, node, f"needs at least {minimum} entr"
                            + ("y" if minimum == 1 else "ies"))
        return node

    def text(self, node: Any, key: Key) -> str:
        if not isinstance(node, str) or not node.strip():
            raise self.fail(key, node, "must be a non-empty text",
                            "quote it if YAML reads it as a number or true/false")
        return node

    def integer(self, node: Any, key: Key, low: int, high: int | None = None) -> int:
        if isinstance(node, bool) or not isinstance(node, int) or node < low \
                or (high is not None and node > high):
            span = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise self.fail(key, node, f"must be a whole number {span}")
        return node

    def number(self, node: Any, key: Key, low: float | None = None,
               high: float | None = None) -> float:
        if isinstance(node, bool) or not isinstance(node, (int, float)) \
                or (low is not None and node < low) or (high is not None and node > high):
            if low is not None and high is not None:
                span = f" from {low} to {high}"
            elif low is not None:
                span = f" of at least {low}"
            else:
                span = ""
            raise self.fail(key, node, f"must be a number{span}")
        return node

    def boolean(self, node: Any, key: Key) -> bool:
        if not isinstance(node, bool):
            raise self.fail(key, node, "must be true or false")
        return node

    def choice(self, node: Any, key: Key, allowed: Sequence[str]) -> str:
        if node not in allowed:
            raise self.fail(key, node, "allowed: " + ", ".join(repr(a) for a in allowed))
        return node

    def midi_channel(self, node: Any, key: Key) -> int | str:
        if node == "all":
            return "all"
        if isinstance(node, bool) or not isinstance(node, int) or not 0 <= node <= 15:
            raise self.fail(key, node, "must be a MIDI channel 0-15 or 'all'",
                            "Sushi counts MIDI channels from 0")
        return node

    def optional(self, node: dict[str, Any], name: str, key: Key,
                 read: Callable[[Any, Key], Any]) -> Any:
        return read(node[name], key + (name,)) if name in node else None


# --------------------------------------------------------------------------- sections

_HOST_KEYS = ("samplerate", "tempo", "time_signature", "playing_mode", "tempo_sync",
              "clip_detection", "master_limiter", "cv_inputs", "cv_outputs", "midi_inputs",
              "midi_outputs", "rt_midi_inputs", "rt_midi_outputs")


def _host(r: _Reader, node: Any) -> dict[str, Any]:
    key: Key = ("host",)
    node = r.mapping(node, key, _HOST_KEYS)
    host: dict[str, Any] = {"samplerate": 48000}
    if "samplerate" in node:
        host["samplerate"] = r.integer(node["samplerate"], key + ("samplerate",), 1000, 192000)
    if "tempo" in node:
        host["tempo"] = r.number(node["tempo"], key + ("tempo",), 1)
    if "time_signature" in node:
        sig = node["time_signature"]
        where = key + ("time_signature",)
        if isinstance(sig, str) and re.fullmatch(r"\s*\d+\s*/\s*\d+\s*", sig):
            num, den = (int(p) for p in sig.split("/"))
        elif isinstance(sig, dict):
            sig = r.mapping(sig, where, ("numerator", "denominator"),
                            ("numerator", "denominator"))
            num = r.integer(sig["numerator"], where + ("numerator",), 1)
            den = r.integer(sig["denominator"], where + ("denominator",), 1)
        else:
            raise r.fail(where, sig, "must be like \"4/4\" or {numerator: 4, denominator: 4}")
        if num < 1 or den < 1:
            raise r.fail(where, sig, "must have a numerator and denominator of at least 1")
        host["time_signature"] = {"numerator": num, "denominator": den}
    if "playing_mode" in node:
        host["playing_mode"] = r.choice(node["playing_mode"], key + ("playing_mode",),
                                        ("playing", "stopped"))
    if "tempo_sync" in node:
        host["tempo_sync"] = r.choice(node["tempo_sync"], key + ("tempo_sync",),
                                      ("internal", "midi", "ableton_link"))
    if "clip_detection" in node:
        where = key + ("clip_detection",)
        clip = r.mapping(node["clip_detection"], where, ("inputs", "outputs"))
        host["clip_detection"] = {k: r.boolean(v, where + (k,)) for k, v in clip.items()}
    if "master_limiter" in node:
        host["master_limiter"] = r.boolean(node["master_limiter"], key + ("master_limiter",))
    for name in ("cv_inputs", "cv_outputs"):
        if name in node:
            host[name] = r.integer(node[name], key + (name,), 0, 4)
    for name in ("midi_inputs", "midi_outputs"):
        if name in node:
            host[name] = r.integer(node[name], key + (name,), 0)
    for name in ("rt_midi_inputs", "rt_midi_outputs"):
        if name in node:
            where = key + (name,)
            mappings = []
            for i, item in enumerate(r.items(node[name], where)):
                at = where + (i,)
                item = r.mapping(item, at, ("device", "port", "virtual"), ("device", "port"))
                mapping = {"device": r.integer(item["device"], at + ("device",), 0),
                           "port": r.integer(item["port"], at + ("port",), 0)}
                if "virtual" in item:
                    mapping["virtual"] = r.boolean(item["virtual"], at + ("virtual",))
                mappings.append(mapping)
            host[name] = mappings
    return host


def _state(r: _Reader, node: dict[str, Any], key: Key) -> State:
    parameters: dict[str, float] = {}
    properties: dict[str, str] = {}
    if "parameters" in node:
        where = key + ("parameters",)
        raw = node["parameters"]
        if not isinstance(raw, dict):
            raise r.fail(where, raw, "must map parameter names to values from 0 to 1")
        for name, value in raw.items():
            parameters[str(name)] = r.number(value, where + (str(name),), 0.0, 1.0)
    if "properties" in node:
        where = key + ("properties",)
        raw = node["properties"]
        if not isinstance(raw, dict):
            raise r.fail(where, raw, "must map property names to text values")
        for name, value in raw.items():
            if not isinstance(value, str):
                raise r.fail(where + (str(name),), value, "must be text (quote it)")
            properties[str(name)] = value
    bypassed = r.optional(node, "bypassed", key, r.boolean)
    program = r.optional(node, "program", key, lambda v, k: r.integer(v, k, 0))
    return State(key, parameters, properties, bypassed, program)


def _connections(r: _Reader, node: Any, key: Key) -> tuple[Connection, ...]:
    found = []
    for i, item in enumerate(r.items(node, key)):
        at = key + (i,)
        if isinstance(item, int) and not isinstance(item, bool):
            # A bare number: the engine channel feeding (or fed by) track channel i.
            found.append(Connection(at, "channel", r.integer(item, at, 0), i, bare=True))
            continue
        if not isinstance(item, dict):
            raise r.fail(at, item, "must be an engine channel number or a mapping like "
                         "{engine_bus: 0, track_bus: 0} or {engine_channel: 0, track_channel: 0}")
        item = r.mapping(item, at, ("engine_bus", "track_bus", "engine_channel", "track_channel"))
        buses = "engine_bus" in item or "track_bus" in item
        channels = "engine_channel" in item or "track_channel" in item
        if buses == channels:
            raise r.fail(at, item, "must connect either buses (engine_bus, track_bus) or "
                         "channels (engine_channel, track_channel), not both")
        kind = "bus" if buses else "channel"
        engine_key, track_key = f"engine_{kind}", f"track_{kind}"
        if engine_key not in item:
            raise r.fail(at + (engine_key,), MISSING, "is required")
        found.append(Connection(at, kind, r.integer(item[engine_key], at + (engine_key,), 0),
                                r.integer(item.get(track_key, 0), at + (track_key,), 0)))
    return tuple(found)


_PLUGIN_KEYS = ("name", "project", "type", "uid", "path", "uri") + STATE_KEYS
_KEYS_OF_TYPE = {"internal": ("uid",), "vst2x": ("path",), "vst3x": ("path", "uid"),
                 "lv2": ("uri",)}


class _Projects:
    """Plugin projects of this repo, loaded once each."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, PluginIdentity] = {}

    def get(self, r: _Reader, name: str, key: Key) -> PluginIdentity:
        if name not in self._cache:
            path = identity_path(self.directory, name)
            if not path.is_file():
                known = ", ".join(known_projects(self.directory)) or "none"
                raise r.fail(key, name, f"is not a plugin project of this repo "
                             f"({path} not found; known: {known})",
                             "use `path:`/`uid:`/`type:` for a plugin from elsewhere")
            self._cache[name] = load_identity(path)
        return self._cache[name]


def _plugin(r: _Reader, node: Any, key: Key, projects: _Projects, plugin_dir: str) -> Plugin:
    node = r.mapping(node, key, _PLUGIN_KEYS)
    state = _state(r, node, key)
    if "project" in node:
        project = projects.get(r, r.text(node["project"], key + ("project",)), key + ("project",))
        for name in ("type", "uid", "path", "uri"):
            if name in node:
                raise r.fail(key + (name,), node[name], "must not be set with `project:` "
                             "(the project gives type vst3x, its path and its uid)",
                             f"remove `{name}:` or `project:`")
        name = r.text(node.get("name", project.name), key + ("name",))
        return Plugin(key, name, "vst3x", uid=project.vst3_class_name,
                      path=project.install_path(plugin_dir), project=project, state=state)
    if "name" not in node:
        raise r.fail(key + ("name",), MISSING, "is required (the processor name that MIDI, "
                     "OSC and events refer to)")
    name = r.text(node["name"], key + ("name",))
    if "type" in node:
        kind = r.choice(node["type"], key + ("type",), PLUGIN_TYPES)
    elif "uri" in node:
        kind = "lv2"
    elif "path" in node:
        kind = "vst3x" if "uid" in node else "vst2x"
    elif "uid" in node:
        kind = "internal"
    else:
        raise r.fail(key, MISSING, "needs `project:`, or `type:` with `uid:`/`path:`/`uri:`",
                     "e.g. {name: eq, uid: sushi.testing.equalizer} for a built-in plugin")
    wanted = _KEYS_OF_TYPE[kind]
    for name_ in ("uid", "path", "uri"):
        if name_ in node and name_ not in wanted:
            raise r.fail(key + (name_,), node[name_], f"is not used by a {kind} plugin "
                         f"(it takes {' and '.join(wanted)})")
    for name_ in wanted:
        if name_ not in node:
            raise r.fail(key + (name_,), MISSING, f"is required for a {kind} plugin")
    values = {k: r.text(node[k], key + (k,)) for k in wanted}
    return Plugin(key, name, kind, state=state, **values)


def _track(r: _Reader, node: Any, key: Key, kind: str, projects: _Projects,
           plugin_dir: str) -> Track:
    if kind == "regular":
        allowed = ("name", "channels", "buses", "inputs", "outputs", "plugins") + STATE_KEYS
    else:
        allowed = ("name", "plugins") + STATE_KEYS
    node = r.mapping(node, key, allowed, ("name",))
    name = r.text(node["name"], key + ("name",))
    plugins = tuple(_plugin(r, p, key + ("plugins", j), projects, plugin_dir)
                    for j, p in enumerate(r.items(node.get("plugins"), key + ("plugins",))))
    state = _state(r, node, key)
    if kind != "regular":
        return Track(key, name, kind, plugins=plugins, state=state)
    if ("channels" in node) == ("buses" in node):
        raise r.fail(key + ("channels",), node.get("channels", MISSING),
                     "set either `channels: N` (1 = mono, 2 = stereo) or `buses: N` "
                     "(a multibus track of N stereo buses), exactly one of them")
    channels = r.optional(node, "channels", key, lambda v, k: r.integer(v, k, 1, 64))
    buses = r.optional(node, "buses", key, lambda v, k: r.integer(v, k, 1, 32))
    inputs = _connections(r, node.get("inputs"), key + ("inputs",))
    outputs = _connections(r, node.get("outputs"), key + ("outputs",))
    width = channels if channels is not None else 2 * (buses or 0)
    for con in inputs + outputs:
        if con.kind == "channel" and con.track >= width:
            at = con.where if con.bare else con.where + ("track_channel",)
            raise r.fail(at, con.track, f"is not a channel of track {name!r}: it has {width} "
                         f"(channels count from 0)")
        if con.kind == "bus" and buses is not None and con.track >= buses:
            raise r.fail(con.where + ("track_bus",), con.track,
                         f"is not a bus of track {name!r}: it has {buses} (buses count from 0)")
    return Track(key, name, kind, channels, buses, inputs, outputs, plugins, state)


def _midi(r: _Reader, node: Any) -> Midi:
    key: Key = ("midi",)
    node = r.mapping(node, key, ("inputs", "outputs", "program_changes", "cc", "clock_output"))

    def routes(name: str, target: str, with_raw: bool) -> tuple[MidiRoute, ...]:
        found = []
        for i, item in enumerate(r.items(node.get(name), key + (name,))):
            at = key + (name, i)
            allowed = (target, "port", "channel") + (("raw",) if with_raw else ())
            item = r.mapping(item, at, allowed, (target,))
            found.append(MidiRoute(at, r.text(item[target], at + (target,)),
                                   r.integer(item.get("port", 0), at + ("port",), 0),
                                   r.midi_channel(item.get("channel", "all"), at + ("channel",)),
                                   r.boolean(item.get("raw", False), at + ("raw",))))
        return tuple(found)

    cc = []
    for i, item in enumerate(r.items(node.get("cc"), key + ("cc",))):
        at = key + ("cc", i)
        item = r.mapping(item, at, ("cc", "processor", "parameter", "min", "max", "mode", "port",
                                    "channel"), ("cc", "processor", "parameter"))
        cc.append(CcMapping(at, r.text(item["processor"], at + ("processor",)),
                            r.text(item["parameter"], at + ("parameter",)),
                            r.integer(item["cc"], at + ("cc",), 0, 127),
                            r.number(item.get("min", 0.0), at + ("min",)),
                            r.number(item.get("max", 1.0), at + ("max",)),
                            r.choice(item.get("mode", "absolute"), at + ("mode",),
                                     ("absolute", "relative")),
                            r.integer(item.get("port", 0), at + ("port",), 0),
                            r.midi_channel(item.get("channel", "all"), at + ("channel",))))
    clock = None
    if "clock_output" in node:
        at = key + ("clock_output",)
        clock = tuple(r.integer(p, at + (i,), 0) for i, p in enumerate(r.items(node[
            "clock_output"], at)))
    return Midi(routes("inputs", "track", True), routes("outputs", "track", False),
                routes("program_changes", "processor", False), tuple(cc), clock)


def _osc(r: _Reader, node: Any) -> Osc:
    key: Key = ("osc",)
    node = r.mapping(node, key, ("all_outputs", "outputs"))
    if ("all_outputs" in node) == ("outputs" in node):
        raise r.fail(key, MISSING, "needs exactly one of `all_outputs: true|false` or "
                     "`outputs: [...]` (Sushi accepts one or the other)")
    if "all_outputs" in node:
        return Osc(all_outputs=r.boolean(node["all_outputs"], key + ("all_outputs",)))
    outputs = []
    for i, item in enumerate(r.items(node["outputs"], key + ("outputs",))):
        at = key + ("outputs", i)
        item = r.mapping(item, at, ("processor", "skip_parameters"), ("processor",))
        skip = tuple(r.text(p, at + ("skip_parameters", j)) for j, p in
                     enumerate(r.items(item.get("skip_parameters"), at + ("skip_parameters",))))
        outputs.append(OscOutput(at, r.text(item["processor"], at + ("processor",)), skip))
    return Osc(outputs=tuple(outputs))


def _cv(r: _Reader, node: Any, host: dict[str, Any]) -> tuple[tuple[CvRoute, ...], ...]:
    key: Key = ("cv",)
    node = r.mapping(node, key, ("inputs", "outputs"))
    found = []
    for side in ("inputs", "outputs"):
        routes = []
        available = host.get(f"cv_{side}", 0)
        for i, item in enumerate(r.items(node.get(side), key + (side,))):
            at = key + (side, i)
            item = r.mapping(item, at, ("cv", "processor", "parameter"),
                             ("cv", "processor", "parameter"))
            cv = r.integer(item["cv"], at + ("cv",), 0)
            if cv >= available:
                # Sushi only logs a failed CV connection and runs without it.
                raise r.fail(at + ("cv",), cv, f"is not one of the {available} CV {side} the "
                             f"host has (host.cv_{side})", f"set host.cv_{side}: {cv + 1} or more")
            routes.append(CvRoute(at, cv, r.text(item["processor"], at + ("processor",)),
                                  r.text(item["parameter"], at + ("parameter",))))
        found.append(tuple(routes))
    return tuple(found)


def _gates(r: _Reader, node: Any) -> tuple[tuple[GateRoute, ...], ...]:
    key: Key = ("gates",)
    node = r.mapping(node, key, ("inputs", "outputs"))
    found = []
    for side in ("inputs", "outputs"):
        routes = []
        for i, item in enumerate(r.items(node.get(side), key + (side,))):
            at = key + (side, i)
            item = r.mapping(item, at, ("gate", "processor", "note", "channel", "sync_ppq"),
                             ("gate",))
            gate = r.integer(item["gate"], at + ("gate",), 0)
            if "sync_ppq" in item:
                for name in ("processor", "note", "channel"):
                    if name in item:
                        raise r.fail(at + (name,), item[name], "is not used by a sync gate "
                                     "(one with `sync_ppq:`)")
                routes.append(GateRoute(at, gate, sync_ppq=r.integer(
                    item["sync_ppq"], at + ("sync_ppq",), 1, 48)))
                continue
            for name in ("processor", "note"):
                if name not in item:
                    raise r.fail(at + (name,), MISSING, "is required for a note gate "
                                 "(or give `sync_ppq:` for a clock gate)")
            routes.append(GateRoute(at, gate, r.text(item["processor"], at + ("processor",)),
                                    r.integer(item["note"], at + ("note",), 0, 127),
                                    r.integer(item.get("channel", 0), at + ("channel",), 0, 15)))
        found.append(tuple(routes))
    return tuple(found)


_EVENT_KINDS = {"parameter": "parameter_change", "property": "property_change",
                "note_on": "note_on", "note_off": "note_off"}


def _events(r: _Reader, node: Any) -> tuple[Event, ...]:
    found = []
    for i, item in enumerate(r.items(node, ("events",))):
        at: Key = ("events", i)
        item = r.mapping(item, at, ("time", "processor", "parameter", "property", "note_on",
                                    "note_off", "value", "velocity"), ("time", "processor"))
        kinds = [k for k in _EVENT_KINDS if k in item]
        if len(kinds) != 1:
            raise r.fail(at, MISSING, "needs exactly one of `parameter:`, `property:`, "
                         "`note_on:` or `note_off:`")
        kind = kinds[0]
        time = r.number(item["time"], at + ("time",), 0.0)
        processor = r.text(item["processor"], at + ("processor",))
        if kind in ("parameter", "property"):
            if "velocity" in item:
                raise r.fail(at + ("velocity",), item["velocity"], f"is not used by a {kind} "
                             "event")
            if "value" not in item:
                raise r.fail(at + ("value",), MISSING, f"is required for a {kind} event")
            name = r.text(item[kind], at + (kind,))
            value = (r.number(item["value"], at + ("value",)) if kind == "parameter"
                     else r.text(item["value"], at + ("value",)))
            data = {f"{kind}_name": name, "value": value}
        else:
            if "value" in item:
                raise r.fail(at + ("value",), item["value"], "is not used by a note event; "
                             "use `velocity:`")
            data = {"note": r.integer(item[kind], at + (kind,), 0, 127),
                    "velocity": r.number(item.get("velocity", 1.0), at + ("velocity",), 0.0, 1.0)}
        found.append(Event(at, time, _EVENT_KINDS[kind], processor, data))
    return tuple(found)


# --------------------------------------------------------------------------- cross-references

def _check_names(r: _Reader, rig: Rig) -> None:
    """Sushi's processor namespace: every track and plugin name unique, references valid."""
    seen: dict[str, Key] = {}
    tracks: set[str] = set()
    for track in [*([rig.pre_track] if rig.pre_track else []), *rig.tracks,
                  *([rig.post_track] if rig.post_track else [])]:
        for name, where in [(track.name, track.where)] + [(p.name, p.where)
                                                           for p in track.plugins]:
            if name in seen:
                raise r.fail(where + ("name",), name, f"is already the name of "
                             f"{json_path(seen[name])}; every track and plugin needs its own "
                             "name", "plugins of a project default to the project name: "
                             "give one of them `name:`")
            seen[name] = where
        tracks.add(track.name)

    def must_exist(where: Key, name: str, pool: set[str] | dict[str, Key], noun: str) -> None:
        if name not in pool:
            close = difflib.get_close_matches(name, list(pool), n=1)
            known = ", ".join(sorted(pool)) or "none"
            raise r.fail(where, name, f"is not a {noun} of this rig (known: {known})",
                         f"did you mean {close[0]!r}?" if close else None)

    for route in rig.midi.inputs + rig.midi.outputs:
        must_exist(route.where + ("track",), route.target, tracks, "track")
    for route in rig.midi.program_changes:
        must_exist(route.where + ("processor",), route.target, seen, "track or plugin")
    for item in rig.midi.cc:
        must_exist(item.where + ("processor",), item.processor, seen, "track or plugin")
    for out in (rig.osc.outputs or ()) if rig.osc else ():
        must_exist(out.where + ("processor",), out.processor, seen, "track or plugin")
    for cv in rig.cv_inputs + rig.cv_outputs:
        must_exist(cv.where + ("processor",), cv.processor, seen, "track or plugin")
    for gate in rig.gate_inputs + rig.gate_outputs:
        if gate.processor is not None:
            must_exist(gate.where + ("processor",), gate.processor, seen, "track or plugin")
    for event in rig.events:
        must_exist(event.where + ("processor",), event.processor, seen, "track or plugin")


# --------------------------------------------------------------------------- entry point

_TOP_KEYS = ("description", "host", "pre_track", "tracks", "post_track", "midi", "osc", "cv",
             "gates", "events")


def load_rig(source: Path, projects_dir: Path, plugin_dir: str) -> Rig:
    """Read and validate a rig file. `plugin_dir` is where plugins live on the board."""
    r = _Reader(source)
    data = read_yaml_file(source)
    data = r.mapping(data, (), _TOP_KEYS, ("tracks",))
    projects = _Projects(projects_dir)
    description = r.text(data["description"], ("description",)) if "description" in data else ""
    host = _host(r, data.get("host"))
    tracks = tuple(_track(r, t, ("tracks", i), "regular", projects, plugin_dir)
                   for i, t in enumerate(r.items(data["tracks"], ("tracks",), minimum=1)))
    pre = _track(r, data["pre_track"], ("pre_track",), "pre", projects, plugin_dir) \
        if "pre_track" in data else None
    post = _track(r, data["post_track"], ("post_track",), "post", projects, plugin_dir) \
        if "post_track" in data else None
    cv_in, cv_out = _cv(r, data.get("cv"), host)
    gate_in, gate_out = _gates(r, data.get("gates"))
    rig = Rig(name=source.stem, source=source, description=description, host=host,
              tracks=tracks, pre_track=pre, post_track=post, midi=_midi(r, data.get("midi")),
              osc=_osc(r, data["osc"]) if "osc" in data else None,
              cv_inputs=cv_in, cv_outputs=cv_out, gate_inputs=gate_in, gate_outputs=gate_out,
              events=_events(r, data.get("events")))
    _check_names(r, rig)
    return rig
