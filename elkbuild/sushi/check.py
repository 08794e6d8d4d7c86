"""Decide whether Sushi would accept a JSON configuration, and say why not.

Three layers, each reporting `json.path: rule` lines:
- Sushi's own JSON schemas (shipped in elkbuild/sushi/schemas/sushi_<version>/), checked with
  a draft-04 validator that follows rapidjson's reading of them (see `_as_rapidjson`);
- what Sushi's loader (json_configurator.cpp) rejects beyond the schemas: duplicate
  processor names, unknown internal plugin uids, keys it reads without a schema;
- cross-references: MIDI, OSC, CV/gate, events and initial state must name processors
  (tracks or plugins) that the configuration creates.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError

from elkbuild.config import MAX_NUMBER_DIGITS, MAX_YAML_BYTES, MAX_YAML_DEPTH, text_problem
from elkbuild.errors import ElkbuildError
from elkbuild.sushi.versions import INTERNAL_PLUGINS, ONLY_1X_KEYS, SCHEMA_OF_SECTION, SECTIONS, VERSIONS

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


@dataclass
class Report:
    """The verdict on one document for one Sushi version."""

    version: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class InvalidJson(ElkbuildError):
    """A file is not JSON at all; the message is `file:line:col: ...`."""


# --------------------------------------------------------------------------- paths

def json_path(parts: Iterable[str | int]) -> str:
    """('tracks', 0, 'plugins', 1, 'uid') -> 'tracks[0].plugins[1].uid'."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text or "(top level)"


def _problem(parts: Sequence[str | int], rule: str) -> str:
    return f"{json_path(parts)}: {rule}"


# --------------------------------------------------------------------------- schemas

def _as_rapidjson(schema: Any) -> Any:
    """Rewrite a schema so a standard draft-04 validator judges as rapidjson does.

    Sushi validates with rapidjson, which differs from the standard on two points
    that Sushi's schemas depend on:
    - a subschema that is not an object (e.g. a stray `"required": [...]` placed among
      `properties`) constrains nothing;
    - under `"additionalProperties": false`, names listed in `required` (or in
      `dependencies`) count as declared properties. Sushi 1.x's state schema relies on
      this: it declares `processor_name` but requires `processor`, and Sushi reads
      `processor`.
    """
    if not isinstance(schema, dict):
        return {}
    out = dict(schema)
    for key in ("properties", "patternProperties", "definitions"):
        if isinstance(out.get(key), dict):
            out[key] = {name: _as_rapidjson(sub) for name, sub in out[key].items()}
    for key in ("additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = _as_rapidjson(out[key])
    for key in ("oneOf", "anyOf", "allOf"):
        if isinstance(out.get(key), list):
            out[key] = [_as_rapidjson(sub) for sub in out[key]]
    if isinstance(out.get("items"), list):
        out["items"] = [_as_rapidjson(sub) for sub in out["items"]]
    elif "items" in out:
        out["items"] = _as_rapidjson(out["items"])
    if out.get("additionalProperties") is False:
        declared = dict(out.get("properties") or {})
        names = [n for n in out.get("required") or [] if isinstance(n, str)]
        for dep, value in (out.get("dependencies") or {}).items():
            names.append(dep)
            if isinstance(value, list):
                names.extend(v for v in value if isinstance(v, str))
        for name in names:
            declared.setdefault(name, {})
        out["properties"] = declared
    return out


def schema_dir(version: str) -> Path:
    # Folder names are identifiers ("sushi_1_x") so that setuptools ships them as data.
    return SCHEMA_DIR / ("sushi_" + version.replace(".", "_"))


@functools.lru_cache(maxsize=None)
def raw_schema(version: str, filename: str) -> dict[str, Any]:
    """Sushi's schema exactly as Sushi ships it."""
    return json.loads((schema_dir(version) / filename).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=None)
def _validator(version: str, filename: str) -> Draft4Validator:
    return Draft4Validator(_as_rapidjson(copy.deepcopy(raw_schema(version, filename))))


def _schema_files(version: str) -> list[str]:
    files: list[str] = []
    for section in SECTIONS[version]:
        name = SCHEMA_OF_SECTION[section]
        if name not in files:
            files.append(name)
    return files


# --------------------------------------------------------------------------- schema errors

_TYPE_WORDS = {"object": "an object", "array": "a list", "string": "a string",
               "integer": "a whole number", "number": "a number", "boolean": "true or false",
               "null": "null"}


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _discriminator_error(error: ValidationError) -> bool:
    """An error saying 'this alternative is for another kind of entry' (type/mode enum)."""
    depth = len(error.relative_path)
    return (error.validator == "enum" and depth == 1) or (error.validator == "type" and depth == 0)


def _describe(error: ValidationError) -> list[str]:
    """Plain-words problems for one jsonschema error (alternatives resolved)."""
    path = tuple(error.absolute_path)
    kind = error.validator
    value = error.validator_value
    instance = error.instance
    if kind == "required":
        missing = [n for n in value if isinstance(instance, dict) and n not in instance]
        return [_problem(path + (name,), "is required") for name in missing]
    if kind == "additionalProperties":
        allowed = sorted((error.schema.get("properties") or {}).keys())
        extra = [k for k in instance if k not in allowed] if isinstance(instance, dict) else []
        return [_problem(path + (k,), "is not allowed here (allowed: " + ", ".join(allowed) + ")")
                for k in extra]
    if kind == "type":
        wanted = value if isinstance(value, list) else [value]
        words = " or ".join(_TYPE_WORDS.get(w, w) for w in wanted)
        return [_problem(path, f"must be {words}; found {_show(instance)}")]
    if kind == "enum":
        return [_problem(path, "must be one of " + ", ".join(_show(v) for v in value)
                         + f"; found {_show(instance)}")]
    if kind == "minimum":
        return [_problem(path, f"must be at least {value}; found {_show(instance)}")]
    if kind == "maximum":
        return [_problem(path, f"must be at most {value}; found {_show(instance)}")]
    if kind == "minLength":
        return [_problem(path, "must not be empty")]
    if kind == "minItems":
        return [_problem(path, f"needs at least {value} entr{'y' if value == 1 else 'ies'}")]
    if kind in ("oneOf", "anyOf"):
        return _describe_alternatives(error, path)
    return [_problem(path, error.message)]


def _describe_alternatives(error: ValidationError, path: tuple[str | int, ...]) -> list[str]:
    options = error.validator_value
    # Alternatives that differ only in which keys are present (1.x tracks and osc).
    if all(isinstance(o, dict) and set(o) == {"required"} for o in options) \
            and isinstance(error.instance, dict):
        missing = [[k for k in o["required"] if k not in error.instance] for o in options]
        if all(missing):
            best = min(missing, key=len)
            others = " | ".join(" + ".join(m) for m in missing if m is not best)
            return [_problem(path + (key,), f"is required (or instead: {others})")
                    for key in best]
        present = [" + ".join(o["required"]) for o, m in zip(options, missing) if not m]
        return [_problem(path, "must have only one of: " + " | ".join(present))]
    if not error.context:
        return [_problem(path, "fits more than one allowed form; make it unambiguous "
                               "(e.g. set its \"type\" or \"mode\")")]
    branches: dict[int, list[ValidationError]] = defaultdict(list)
    for sub in error.context:
        branches[sub.relative_schema_path[0]].append(sub)
    # An entry whose "type"/"mode" matches no alternative: name the allowed values.
    if all(any(_discriminator_error(e) for e in errs) for errs in branches.values()):
        enums = [e for errs in branches.values() for e in errs
                 if e.validator == "enum" and len(e.relative_path) == 1]
        keys = {tuple(e.relative_path) for e in enums}
        if len(keys) == 1 and len(enums) == len(branches):
            key = next(iter(keys))
            allowed = [v for e in enums for v in e.validator_value]
            found = enums[0].instance
            return [_problem(path + key, "must be one of " + ", ".join(_show(v) for v in allowed)
                             + f"; found {_show(found)}")]
        types = {t for errs in branches.values() for e in errs if e.validator == "type"
                 and not e.relative_path for t in ([e.validator_value]
                                                   if isinstance(e.validator_value, str)
                                                   else e.validator_value)}
        if types and all(any(e.validator == "type" and not e.relative_path for e in errs)
                         for errs in branches.values()):
            words = " or ".join(_TYPE_WORDS.get(t, t) for t in sorted(types))
            return [_problem(path, f"must be {words}; found {_show(error.instance)}")]

    def score(index: int) -> tuple[int, int]:
        errs = branches[index]
        return (int(any(_discriminator_error(e) for e in errs)), len(errs))

    best = min(branches, key=score)
    problems = [p for e in branches[best] for p in _describe(e)]
    only_required = all(e.validator == "required" and not e.relative_path for e in branches[best])
    others = [i for i in branches if i != best
              and all(e.validator == "required" and not e.relative_path for e in branches[i])]
    if only_required and others:
        alternatives = []
        for i in others:
            names = [n for e in branches[i] for n in e.validator_value
                     if isinstance(e.instance, dict) and n not in e.instance]
            alternatives.append(" + ".join(dict.fromkeys(names)))
        problems = [f"{p} (or instead: {' | '.join(alternatives)})" for p in problems]
    return problems


def schema_problems(doc: Any, version: str) -> list[str]:
    """Every way `doc` breaks Sushi `version`'s schemas, in document order."""
    found: list[tuple[tuple[str, ...], str]] = []
    for filename in _schema_files(version):
        for error in _validator(version, filename).iter_errors(doc):
            for text in _describe(error):
                found.append((tuple(str(p) for p in error.absolute_path), text))
    found.sort(key=lambda item: item[0])
    return list(dict.fromkeys(text for _, text in found))


# --------------------------------------------------------------------------- loader rules

@dataclass
class _Processors:
    """Names the configuration creates: tracks and plugins share one namespace in Sushi."""

    all: dict[str, str] = field(default_factory=dict)      # name -> where it is defined
    tracks: dict[str, str] = field(default_factory=dict)


def _tracks(doc: dict[str, Any], version: str) -> Iterator[tuple[tuple[str | int, ...], dict]]:
    tracks = doc.get("tracks")
    if isinstance(tracks, list):
        for i, track in enumerate(tracks):
            if isinstance(track, dict):
                yield ("tracks", i), track
    if version == "1.x":
        for key in ("pre_track", "post_track"):
            if isinstance(doc.get(key), dict):
                yield (key,), doc[key]


def _plugins(track: dict[str, Any]) -> Iterator[tuple[int, dict]]:
    plugins = track.get("plugins")
    if isinstance(plugins, list):
        for j, plugin in enumerate(plugins):
            if isinstance(plugin, dict):
                yield j, plugin


def _collect_processors(doc: dict[str, Any], version: str, problems: list[str]) -> _Processors:
    found = _Processors()

    def add(name: Any, where: tuple[str | int, ...], is_track: bool) -> None:
        if not isinstance(name, str) or not name:
            return
        if name in found.all:
            problems.append(_problem(where + ("name",), f"{_show(name)} is already the name of "
                                     f"{found.all[name]}; Sushi needs every track and plugin "
                                     "name to be unique"))
            return
        found.all[name] = json_path(where)
        if is_track:
            found.tracks[name] = json_path(where)

    for where, track in _tracks(doc, version):
        add(track.get("name"), where, True)
        for j, plugin in _plugins(track):
            add(plugin.get("name"), where + ("plugins", j), False)
    return found


def _track_rules(doc: dict[str, Any], version: str, problems: list[str]) -> None:
    """What Sushi's track loader needs beyond the schema (it reads these unconditionally)."""
    for where, track in _tracks(doc, version):
        if where[0] != "tracks":
            continue
        if version == "0.11":
            for key in ("inputs", "outputs"):
                if key not in track:
                    problems.append(_problem(where + (key,), "is required: Sushi 0.11 reads it "
                                             "for every track (use [] for none)"))
            if track.get("mode") == "multibus":
                for key in ("input_busses", "output_busses"):
                    if key not in track:
                        problems.append(_problem(where + (key,),
                                                 "is required when \"mode\" is \"multibus\""))
        else:
            multibus = track.get("multibus")
            if multibus is True and "buses" not in track:
                problems.append(_problem(where + ("buses",),
                                         "is required when \"multibus\" is true"))
            if multibus is False and "channels" not in track:
                problems.append(_problem(where + ("channels",),
                                         "is required when \"multibus\" is false"))
    for where, track in _tracks(doc, version):
        for j, plugin in _plugins(track):
            uid = plugin.get("uid")
            if plugin.get("type") == "internal" and isinstance(uid, str) and uid \
                    and uid not in INTERNAL_PLUGINS[version]:
                problems.append(_problem(where + ("plugins", j, "uid"),
                                         f"{_show(uid)} is not an internal plugin of Sushi "
                                         f"{version}; Sushi would refuse to load the config"))


def _entries(doc: dict[str, Any], *keys: str) -> Iterator[tuple[tuple[str | int, ...], dict]]:
    node: Any = doc
    for key in keys:
        if not isinstance(node, dict):
            return
        node = node.get(key)
    if isinstance(node, list):
        for i, entry in enumerate(node):
            if isinstance(entry, dict):
                yield keys + (i,), entry


def _reference_rules(doc: dict[str, Any], version: str, names: _Processors,
                     problems: list[str]) -> None:
    def must_name(where: tuple[str | int, ...], key: str, value: Any, tracks_only: bool = False
                  ) -> None:
        pool = names.tracks if tracks_only else names.all
        if not isinstance(value, str) or value in pool:
            return
        noun = "track" if tracks_only else "track or plugin"
        known = ", ".join(sorted(pool)) or "none"
        problems.append(_problem(where + (key,), f"names no {noun} of this config: "
                                 f"{_show(value)} (known: {known})"))

    for where, con in _entries(doc, "midi", "track_connections"):
        must_name(where, "track", con.get("track"), tracks_only=True)
    for where, con in _entries(doc, "midi", "track_out_connections"):
        for key in ("port", "channel", "track"):
            if key not in con:
                problems.append(_problem(where + (key,), "is required (Sushi reads it)"))
        if "port" in con and (not isinstance(con["port"], int) or isinstance(con["port"], bool)
                              or con["port"] < 0):
            problems.append(_problem(where + ("port",), "must be a whole number >= 0; found "
                                     + _show(con["port"])))
        if "channel" in con and not (con["channel"] == "all" or (
                isinstance(con["channel"], int) and not isinstance(con["channel"], bool)
                and 0 <= con["channel"] <= 15)):
            problems.append(_problem(where + ("channel",), "must be 0-15 or \"all\"; found "
                                     + _show(con["channel"])))
        must_name(where, "track", con.get("track"), tracks_only=True)
    for where, con in _entries(doc, "midi", "program_change_connections"):
        must_name(where, "plugin", con.get("plugin"))
    for where, con in _entries(doc, "midi", "cc_mappings"):
        must_name(where, "plugin_name", con.get("plugin_name"))
    for where, out in _entries(doc, "osc", "enabled_processor_outputs"):
        must_name(where, "processor", out.get("processor"))
    for key in ("cv_inputs", "cv_outputs"):
        for where, con in _entries(doc, "cv_control", key):
            must_name(where, "processor", con.get("processor"))
    for key in ("gate_inputs", "gate_outputs"):
        for where, con in _entries(doc, "cv_control", key):
            if con.get("mode") == "note_event":
                must_name(where, "processor", con.get("processor"))
    for where, event in _entries(doc, "events"):
        data = event.get("data")
        if not isinstance(data, dict):
            continue
        must_name(where + ("data",), "plugin_name", data.get("plugin_name"))
        needs = {"parameter_change": ("parameter_name", "value"),
                 "property_change": ("property_name", "value"),
                 "note_on": ("note", "velocity"), "note_off": ("note", "velocity")}
        for key in needs.get(event.get("type"), ()):
            if key not in data:
                problems.append(_problem(where + ("data", key), f"is required for a "
                                         f"{_show(event.get('type'))} event"))
    if version == "1.x":
        for where, state in _entries(doc, "initial_state"):
            must_name(where, "processor", state.get("processor"))


def _warnings(doc: dict[str, Any], version: str) -> list[str]:
    warnings = []
    known = set(SECTIONS["1.x"])
    for key in doc:
        if key not in known:
            warnings.append(_problem((key,), "is not a Sushi section; Sushi ignores it"))
    if version == "0.11":
        for keys in ONLY_1X_KEYS:
            node: Any = doc
            for key in keys[:-1]:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, dict) and keys[-1] in node:
                warnings.append(_problem(keys, "is a Sushi 1.x feature; Sushi 0.11 ignores it"))
    return warnings


# --------------------------------------------------------------------------- entry points

def check_document(doc: Any, version: str) -> Report:
    """Everything Sushi `version` would reject in `doc` (a parsed JSON document)."""
    if version not in VERSIONS:
        raise ValueError(f"unknown Sushi version {version!r}")
    report = Report(version)
    if not isinstance(doc, dict):
        report.problems.append(_problem((), f"must be a JSON object; found {_show(doc)}"))
        return report
    report.problems.extend(schema_problems(doc, version))
    names = _collect_processors(doc, version, report.problems)
    _track_rules(doc, version, report.problems)
    _reference_rules(doc, version, names, report.problems)
    report.problems[:] = list(dict.fromkeys(report.problems))
    report.warnings.extend(_warnings(doc, version))
    return report


def detect_version(doc: Any) -> tuple[str, str]:
    """Guess the Sushi version a document was written for: (version, reason)."""
    if isinstance(doc, dict):
        tracks = doc.get("tracks")
        for i, track in enumerate(tracks if isinstance(tracks, list) else []):
            if not isinstance(track, dict):
                continue
            for key in ("mode", "input_busses", "output_busses"):
                if key in track:
                    return "0.11", f"tracks[{i}] has \"{key}\""
            for key in ("channels", "multibus", "buses"):
                if key in track:
                    return "1.x", f"tracks[{i}] has \"{key}\""
        for key in ("initial_state", "pre_track", "post_track"):
            if key in doc:
                return "1.x", f"it has \"{key}\""
    return "1.x", "nothing in it tells the versions apart"


def _first_key_wins(pairs: list[tuple[str, Any]], duplicates: list[str]) -> dict[str, Any]:
    # rapidjson keeps every member and Sushi's lookups find the first one.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            duplicates.append(key)
        else:
            out[key] = value
    return out


def _bracket_depth_problem(text: str) -> str | None:
    """Nesting past the limit, found by a linear scan (json.loads would recurse into
    a RecursionError first): brackets inside strings do not count."""
    depth = 0
    for match in _BRACKETS.finditer(_STRINGS.sub('""', text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_YAML_DEPTH:
            return f"nests deeper than {MAX_YAML_DEPTH} levels"
    return None


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


class _NotSushiJson(ValueError):
    """Valid for Python's json module, refused by Sushi's parser (rapidjson)."""


def _number(text: str) -> int | float:
    if sum(ch.isdigit() for ch in text) > MAX_NUMBER_DIGITS:
        raise _NotSushiJson(f"a number of {len(text)} characters is too big for Sushi")
    value = float(text) if any(ch in text for ch in ".eE") else int(text)
    if isinstance(value, float) and math.isinf(value):
        raise _NotSushiJson(f"the number {text} is too big for Sushi (past a double's range)")
    return value


def _refuse_constant(name: str) -> Any:
    raise _NotSushiJson(f"{name} is not a JSON number (Sushi's parser refuses it)")


def _text_problems(doc: Any) -> str | None:
    """The first string (key or value) that is not Unicode text, named by its path."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), doc)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                problem = text_problem(key)
                if problem is not None:
                    return f"a key in {json_path(where)} {problem}"
                stack.append(((*where, key), value))
        elif isinstance(node, list):
            stack.extend(((*where, i), value) for i, value in enumerate(node))
        elif isinstance(node, str):
            problem = text_problem(node)
            if problem is not None:
                return f"{json_path(where)} {problem}"
    return None


def parse_json(data: str | bytes, where: str | Path) -> tuple[Any, list[str]]:
    """Parse a Sushi JSON document as Sushi would: (document, warnings).

    Refused with InvalidJson naming `where` (and line:col for syntax): text that is
    not UTF-8, larger than 4 MiB or nested past 64 levels, numbers a double cannot
    hold, NaN/Infinity, and strings with unpaired surrogate escapes.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJson(f"{where}: is not UTF-8 text (byte {exc.start})",
                              "save the file as UTF-8") from None
    if len(data) > MAX_YAML_BYTES:
        raise InvalidJson(f"{where}: is larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB",
                          "a Sushi config is a few kilobytes: is this the right file?")
    problem = _bracket_depth_problem(data)
    if problem is not None:
        raise InvalidJson(f"{where}: {problem}", "flatten the structure")
    duplicates: list[str] = []
    try:
        doc = json.loads(data, object_pairs_hook=lambda p: _first_key_wins(p, duplicates),
                         parse_int=_number, parse_float=_number, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InvalidJson(f"{where}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}",
                          "fix the JSON syntax at that position") from None
    except _NotSushiJson as exc:
        raise InvalidJson(f"{where}: {exc}", "write a value Sushi can read") from None
    problem = _text_problems(doc)
    if problem is not None:
        raise InvalidJson(f"{where}: {problem}", "remove the \\uD800-\\uDFFF escape") from None
    warnings = [f"key {json.dumps(k)} appears twice in one object; Sushi uses the first"
                for k in dict.fromkeys(duplicates)]
    return doc, warnings


def load_json(path: Path) -> tuple[Any, list[str]]:
    """Parse a Sushi JSON file: (document, warnings). InvalidJson names file:line:col."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidJson(f"{path}: no such file", "give the path of a Sushi JSON file") from None
    except IsADirectoryError:
        raise InvalidJson(f"{path}: is a folder", "give the path of a Sushi JSON file") from None
    except OSError as exc:
        raise InvalidJson(f"{path}: cannot be read: {exc.strerror}") from None
    return parse_json(data, path)


@dataclass
class FileVerdict:
    path: Path
    version: str
    assumed: str | None       # why the version was chosen, when it was not given
    report: Report
    json_warnings: list[str]

    @property
    def ok(self) -> bool:
        return self.report.ok

    def as_dict(self) -> dict[str, Any]:
        return {"file": str(self.path), "os_version": self.version, "assumed": self.assumed,
                "ok": self.ok, "problems": self.report.problems,
                "warnings": self.json_warnings + self.report.warnings}


def check_file(path: Path, version: str | None = None) -> FileVerdict:
    """Check a Sushi JSON file; without `version` the file's shape decides it."""
    doc, json_warnings = load_json(path)
    assumed = None
    detected, reason = detect_version(doc)
    if version is None:
        version, assumed = detected, reason
    elif detected != version and reason.startswith("tracks["):
        json_warnings.append(f"it looks written for Sushi {detected} ({reason})")
    return FileVerdict(path, version, assumed, check_document(doc, version), json_warnings)
