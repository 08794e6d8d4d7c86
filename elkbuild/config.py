"""The project configuration: layered, validated when loaded, every value traceable.

Layers, lowest first: built-in defaults < project file (elkbuild.yaml) < user file
(~/.config/elkbuild/config.yaml) < ELKBUILD_* environment < command-line flags.
Each leaf remembers which layer set it, so `invoke config` can say where a value
came from and an error can name the file that holds the bad value.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator, Mapping

import yaml

from elkbuild.errors import MISSING, ConfigError, UsageError

PROJECT_FILE = "elkbuild.yaml"
DEFAULT_SOURCE = "built-in default"
CLI_SOURCE = "command line"

# Environment variables that are settings of elkbuild itself, not config paths.
_ENV_NOT_CONFIG = {"ELKBUILD_VERBOSE", "ELKBUILD_USER_CONFIG", "ELKBUILD_BOARD_PASSWORD",
                   "ELKBUILD_PROJECT_DIR"}
_ENV_ALIASES = {"ELKBUILD_CACHE": "cache_dir"}

OS_VERSIONS = ("0.11", "1.x")
AUTH_POLICIES = ("key", "agent", "password")


# --------------------------------------------------------------------------- schema
# A small declarative schema: each field is a checker returning the normalised value
# or raising ValueError with the sentence "allowed: ..." that the error will show.

Checker = Callable[[Any], Any]


def text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value


def integer(low: int, high: int) -> Checker:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")
        return value
    return check


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def choice(*allowed: str) -> Checker:
    def check(value: Any) -> str:
        if value not in allowed:
            raise ValueError("allowed: " + " or ".join(repr(a) for a in allowed))
        return value
    return check


def remote_dir(value: Any) -> str:
    """A directory on the board: absolute POSIX path, no '..' (deploy writes there)."""
    path = text(value)
    if not path.startswith("/") or ".." in PurePosixPath(path).parts:
        raise ValueError("must be an absolute path on the board without '..'")
    return path.rstrip("/") or "/"


def local_path(value: Any) -> str:
    return os.path.expanduser(text(value))


def optional(check: Checker) -> Checker:
    def wrapped(value: Any) -> Any:
        return None if value is None else check(value)
    return wrapped


def os_version(value: Any) -> str:
    """Elk Audio OS line. YAML reads `0.11` as a float, and 1.0/1.1 are the 1.x line."""
    if isinstance(value, float):
        value = repr(value)
    value = str(value).strip() if isinstance(value, (str, int)) else value
    if value in ("1", "1.0", "1.1", "1.x", "1.X"):
        return "1.x"
    if value in ("0.11", "0.11.0", "0.11.x"):
        return "0.11"
    raise ValueError("allowed: '0.11' (Xenomai 3) or '1.x' (EVL)")


def hostname(value: Any) -> str:
    host = text(value)
    if not re.fullmatch(r"[A-Za-z0-9._:\-\[\]]+", host):
        raise ValueError("must be a host name or IP address (letters, digits, '.', '-', ':')")
    return host


BOARD_FIELDS: dict[str, Checker] = {
    "host": hostname,
    "port": integer(1, 65535),
    "user": text,
    "os_version": os_version,
    "auth": choice(*AUTH_POLICIES),
    "known_hosts": local_path,
    "identity_file": optional(local_path),
    "plugin_dir": remote_dir,
    "config_dir": remote_dir,
    "release_root": remote_dir,
    "keep_releases": integer(1, 100),
    "connect_timeout": integer(1, 600),
    "command_timeout": integer(1, 3600),
    "io_timeout": integer(1, 600),
    "keepalive": integer(0, 600),
}

# Sections whose inner shape belongs to a later pipeline stage: only their type is
# checked here; the module that consumes them validates their entries.
OPEN_SECTIONS = ("toolchains", "dependencies", "plugins")

SCHEMA: dict[str, Any] = {
    "project": {
        "name": text,
        "plugins_dir": text,
        "plugin_install_dir": remote_dir,
    },
    "sushi": {
        "os_version": os_version,
        "configs_dir": text,
        "rendered_dir": text,
    },
    "toolchain": text,
    "cache_dir": local_path,
    "build_dir": text,
    "board_defaults": BOARD_FIELDS,
    "boards": ("map", BOARD_FIELDS),
    **{name: ("open", None) for name in OPEN_SECTIONS},
}

DEFAULTS: dict[str, Any] = {
    "project": {
        "name": "elkbuild-project",
        "plugins_dir": "plugins",
        "plugin_install_dir": "/home/mind/plugins",
    },
    "sushi": {
        "os_version": "1.x",
        "configs_dir": "sushi-configs",
        "rendered_dir": "sushi-configs/rendered",
    },
    "toolchain": "debian-arm64",
    "cache_dir": "~/.cache/elkbuild",
    "build_dir": "build",
    "board_defaults": {
        "port": 22,
        "user": "mind",
        "os_version": "1.x",
        "auth": "key",
        "known_hosts": "~/.ssh/known_hosts",
        "identity_file": None,
        "plugin_dir": "/home/mind/plugins",
        "config_dir": "/home/mind/config_files",
        "release_root": "/udata/elkbuild",
        "keep_releases": 5,
        "connect_timeout": 10,
        "command_timeout": 60,
        "io_timeout": 15,
        "keepalive": 5,
    },
    "boards": {},
    "toolchains": {},
    "dependencies": {},
    "plugins": {},
}


# --------------------------------------------------------------------------- boards

@dataclass(frozen=True)
class Board:
    """Everything needed to reach one Elk board and to lay files out on it."""

    name: str
    host: str
    port: int = 22
    user: str = "mind"
    os_version: str = "1.x"
    auth: str = "key"
    known_hosts: Path = Path("~/.ssh/known_hosts").expanduser()
    identity_file: Path | None = None
    plugin_dir: str = "/home/mind/plugins"
    config_dir: str = "/home/mind/config_files"
    release_root: str = "/udata/elkbuild"
    keep_releases: int = 5
    connect_timeout: int = 10   # seconds: TCP connect, SSH banner, authentication
    command_timeout: int = 60   # seconds: each remote command, at most
    io_timeout: int = 15        # seconds without progress in a transfer: a stalled board
    keepalive: int = 5          # seconds between SSH keepalives (0: none)

    @property
    def address(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


# --------------------------------------------------------------------------- loading

def _flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, path)
        else:
            yield path, value


def _set(tree: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = tree
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value


def _get(tree: Mapping[str, Any], path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return MISSING
        node = node[part]
    return node


# What a project, user, rig or plugin file may hold. YAML's aliases can make a few
# lines stand for an exponential tree ("billion laughs") and its nesting drives the
# recursive constructor into a RecursionError; both are refused before anything
# walks the data.
MAX_YAML_BYTES = 4 * 1024 * 1024
MAX_YAML_DEPTH = 64
MAX_YAML_NODES = 500_000
MAX_NUMBER_DIGITS = 300
"""Digits in one number: more than a double holds (~1.8e308) is no setting anyone
means, and Python refuses to convert integers past 4300 digits anyway."""


def text_problem(value: str) -> str | None:
    """Why a decoded string is not valid Unicode text (a lone surrogate from an
    escape such as \\ud800), or None: such a string cannot be written as UTF-8,
    and Sushi's JSON parser refuses it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"holds an unpaired surrogate (\\u{ord(value[exc.start]):04x}), which is not Unicode text"
    return None


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader whose numbers and strings are checked where they are made, so the
    error carries the line and column."""


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    digits = sum(ch.isdigit() for ch in node.value)
    if digits > MAX_NUMBER_DIGITS:
        raise yaml.constructor.ConstructorError(
            None, None, f"a number of {digits} digits (at most {MAX_NUMBER_DIGITS})",
            node.start_mark)
    return yaml.SafeLoader.construct_yaml_int(loader, node)


def _construct_str(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    value = yaml.SafeLoader.construct_yaml_str(loader, node)
    problem = text_problem(value)
    if problem is not None:
        raise yaml.constructor.ConstructorError(None, None, f"a string that {problem}",
                                                node.start_mark)
    return value


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_StrictLoader.add_constructor("tag:yaml.org,2002:str", _construct_str)


def load_yaml_value(text: str) -> Any:
    """One YAML document with the strict loader (no limits on size: for short texts)."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def _yaml_problem(text: str) -> tuple[str, str] | None:
    """(where, what) when `text` nests too deep, before anything recursive runs."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                return f":{event.start_mark.line + 1}", f"nests deeper than {MAX_YAML_DEPTH} levels"
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
    return None


def expanded_size(data: Any) -> int | None:
    """How many nodes `data` has with every alias expanded (None: it contains itself).
    Linear in the distinct nodes: a node reached twice is counted from a memo."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, children_done = stack.pop()
        if not isinstance(node, (dict, list)) or (id(node) in sizes and not children_done):
            continue
        children = [c for c in (node.values() if isinstance(node, dict) else node)
                    if isinstance(c, (dict, list))]
        if children_done:
            open_nodes.discard(id(node))
            leaves = len(node) - len(children)
            sizes[id(node)] = 1 + leaves + sum(sizes[id(c)] for c in children)
            continue
        if id(node) in open_nodes:
            return None
        open_nodes.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                return None
            stack.append((child, False))
    return sizes.get(id(data), 1)


def parse_yaml(text: str, where: str | Path) -> Any:
    """YAML text, safely: syntax errors name the line and column; size, nesting and
    alias expansion are bounded, each refusal one line naming the file."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(where, "", f"{len(text)} characters",
                          f"is larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB, the most a YAML file may be")
    try:
        problem = _yaml_problem(text)
        if problem is not None:
            raise ConfigError(f"{where}{problem[0]}", "", MISSING, problem[1],
                              "flatten the structure")
        data = load_yaml_value(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        place = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else str(where)
        problem_text = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(place, "", MISSING, f"is not valid YAML: {problem_text}",
                          "fix the YAML syntax at that line") from None
    size = expanded_size(data)
    if size is None:
        raise ConfigError(where, "", MISSING, "contains itself through a YAML alias",
                          "replace the alias with the values it stands for")
    if size > MAX_YAML_NODES:
        raise ConfigError(where, "", f"{size} values once its aliases are expanded",
                          f"is too large (at most {MAX_YAML_NODES})",
                          "use fewer YAML aliases (&name / *name)")
    return data


def read_yaml_file(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; syntax errors name the file, line and column."""
    if path.exists() and not path.is_file():
        raise ConfigError(path, "", MISSING, "is not a file", "remove or rename it")
    try:
        text_ = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, "", MISSING, f"is not UTF-8 text (byte {exc.start} cannot be read)",
                          "save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(path, "", MISSING, f"cannot be read: {exc.strerror}") from None
    data = parse_yaml(text_, path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(path, "", type(data).__name__,
                          "must be a mapping of sections (project:, boards:, ...)")
    return data


def _user_file(env: Mapping[str, str]) -> Path:
    if env.get("ELKBUILD_USER_CONFIG"):
        return Path(env["ELKBUILD_USER_CONFIG"]).expanduser()
    base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "elkbuild" / "config.yaml"


def _env_layer(env: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    """ELKBUILD_BOARDS__STUDIO__HOST=x sets boards.studio.host (values read as YAML)."""
    layer: dict[str, tuple[Any, str]] = {}
    for name, raw in env.items():
        if not name.startswith("ELKBUILD_") or name in _ENV_NOT_CONFIG:
            continue
        path = _ENV_ALIASES.get(name) or name[len("ELKBUILD_"):].lower().replace("__", ".")
        if path.split(".")[0] not in SCHEMA:
            continue  # another tool's variable, or a setting that is not a config path
        try:
            value = load_yaml_value(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        if not isinstance(value, (bool, int)):
            value = raw  # only numbers and booleans are converted: "0.10" stays a string
        layer[path] = (value, name)
    return layer


class Config:
    """The effective configuration with the origin of every value."""

    def __init__(self, root: Path, data: dict[str, Any], origins: dict[str, str],
                 files: list[Path]) -> None:
        self.root = root
        self.data = data
        self._origins = origins
        self.files = files

    # -- reading
    def get(self, path: str, default: Any = None) -> Any:
        value = _get(self.data, path)
        return default if value is MISSING else value

    def origin(self, path: str) -> str:
        """Which layer set `path`."""
        return _origin_of(self._origins, path)

    def section(self, name: str) -> dict[str, Any]:
        value = self.data.get(name)
        return dict(value) if isinstance(value, dict) else {}

    def items(self) -> Iterator[tuple[str, Any, str]]:
        """Every leaf as (key path, value, origin), in a stable order."""
        for path, value in sorted(_flatten(self.data)):
            yield path, value, self.origin(path)

    # -- derived facts
    @property
    def cache_dir(self) -> Path:
        return Path(self.data["cache_dir"]).expanduser()

    @property
    def build_dir(self) -> Path:
        return self.root / self.data["build_dir"]

    @property
    def toolchain(self) -> str:
        return self.data["toolchain"]

    def path(self, key: str) -> Path:
        """A project-relative directory setting such as `sushi.configs_dir`."""
        return self.root / self.get(key)

    @property
    def boards(self) -> dict[str, Board]:
        return {name: self._board(name, entry) for name, entry in self.data["boards"].items()}

    def board(self, name: str) -> Board:
        boards = self.boards
        if name not in boards:
            known = ", ".join(sorted(boards)) or "none configured"
            raise UsageError(f"no board named {name!r} in the configuration (known: {known})",
                             f"add boards.{name} to {PROJECT_FILE} or use --host "
                             f"(--board emulated names the emulated board)")
        return boards[name]

    def board_for_host(self, host: str, port: int | None = None, user: str | None = None,
                       os_version_: str | None = None) -> Board:
        """An ad-hoc board for `--host`, built on board_defaults (or a matching board)."""
        try:
            host = hostname(host)
        except ValueError as exc:
            raise UsageError(f"--host {host!r}: {exc}") from None
        for board in self.boards.values():
            if board.host == host and (port is None or board.port == port):
                entry = {"host": host}
                return self._board(board.name, {**self.data["boards"][board.name], **entry,
                                                **_given(port=port, user=user,
                                                         os_version=os_version_)})
        entry = {"host": host, **_given(port=port, user=user, os_version=os_version_)}
        for key, check in (("port", BOARD_FIELDS["port"]), ("os_version", os_version)):
            if key in entry:
                try:
                    entry[key] = check(entry[key])
                except ValueError as exc:
                    raise UsageError(f"--{key.replace('_', '-')} {entry[key]!r}: {exc}") from None
        return self._board(host, entry)

    def board_from_defaults(self, name: str, entry: Mapping[str, Any]) -> Board:
        """A board that is not configured (the emulated one): `entry` on board_defaults."""
        return self._board(name, entry)

    def _board(self, name: str, entry: Mapping[str, Any]) -> Board:
        merged = {**self.data["board_defaults"], **entry}
        for key in ("known_hosts", "identity_file"):
            if merged.get(key) is not None:
                merged[key] = Path(merged[key]).expanduser()
        return Board(name=name, **merged)


def _origin_of(origins: Mapping[str, str], path: str) -> str:
    """The layer that set `path`; for a key that is absent or a whole section, the
    layer that wrote its nearest enclosing entry (the file a fix has to go into)."""
    probe = path
    while probe:
        if probe in origins:
            return origins[probe]
        inside = [o for p, o in origins.items() if p.startswith(probe + ".")]
        if inside:
            return inside[-1]
        probe = probe.rpartition(".")[0]
    return DEFAULT_SOURCE


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def load_config(project_dir: Path | None = None, overrides: Mapping[str, Any] | None = None,
                env: Mapping[str, str] | None = None) -> Config:
    """Load and validate every layer. `overrides` are CLI flags: {"sushi.os_version": "0.11"}."""
    env = os.environ if env is None else env
    root = (project_dir or Path.cwd()).resolve()
    data: dict[str, Any] = {}
    origins: dict[str, str] = {}

    def apply(path: str, value: Any, source: str) -> None:
        # Forget the origins of what this value replaces: the keys below it (only
        # when a section stood there, so loading stays linear) and any key above it.
        replaced = _get(data, path)
        if isinstance(replaced, Mapping):
            for below, _ in _flatten(replaced, path):
                origins.pop(below, None)
        parts = path.split(".")
        for end in range(1, len(parts)):
            above = ".".join(parts[:end])
            held = _get(data, above)
            if held is not MISSING and not isinstance(held, Mapping):
                # `boards: [a, b]` in one file and `boards.studio` in the next: the
                # first is a mistake to report, not a value to drop silently.
                raise ConfigError(_origin_of(origins, above), above, held,
                                  f"must be a mapping (a later layer, {source}, sets {path})")
            origins.pop(above, None)
        _set(data, path, value)
        origins[path] = source

    for path, value in _flatten(DEFAULTS):
        _set(data, path, copy.deepcopy(value))  # an empty default section must not be shared
    files: list[Path] = []
    for file in (root / PROJECT_FILE, _user_file(env)):
        if file.exists():
            files.append(file)
            for path, value in _flatten(read_yaml_file(file)):
                apply(path, value, str(file))
    for path, (value, name) in _env_layer(env).items():
        apply(path, value, name)
    for path, value in (overrides or {}).items():
        if value is not None:
            apply(path, value, CLI_SOURCE)

    _validate(data, origins)
    return Config(root, data, origins, files)


# --------------------------------------------------------------------------- validation

def _validate(data: dict[str, Any], origins: dict[str, str]) -> None:
    def fail(path: str, found: Any, allowed: str) -> None:
        raise ConfigError(_origin_of(origins, path), path, found, allowed)

    def check_fields(prefix: str, node: Any, fields: Mapping[str, Checker]) -> None:
        if not isinstance(node, dict):
            fail(prefix, node, "must be a mapping")
        for key, value in node.items():
            path = f"{prefix}.{key}"
            if key not in fields:
                fail(path, MISSING, "is not a known key; allowed: " + ", ".join(fields))
            try:
                node[key] = fields[key](value)
            except ValueError as exc:
                fail(path, value, str(exc))

    for section, value in list(data.items()):
        rule = SCHEMA.get(section)
        if rule is None:
            fail(section, MISSING, "is not a known section; allowed: " + ", ".join(SCHEMA))
        if isinstance(rule, dict):
            check_fields(section, value, rule)
        elif isinstance(rule, tuple):
            kind, fields = rule
            if not isinstance(value, dict):
                fail(section, value, "must be a mapping of names to entries")
            if kind == "map":
                for name, entry in value.items():
                    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", str(name)):
                        fail(f"{section}.{name}", MISSING,
                             "is not a valid name; use letters, digits, '-', '_', '.'")
                    check_fields(f"{section}.{name}", entry if entry is not None else {}, fields)
                    if "host" not in (entry or {}):
                        fail(f"{section}.{name}.host", MISSING, "is required (host name or IP)")
        else:
            try:
                data[section] = rule(value)
            except ValueError as exc:
                fail(section, value, str(exc))
