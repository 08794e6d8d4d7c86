"""What a deploy sends: the payload (bundles, models, the Sushi config), its
manifest and digest, and what a partial deploy inherits from the current release.

Names are data, never code (SFTP paths, quoted argv), so any text but control
characters is a valid name.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping

from elkbuild.bundle.layout import BundleLayout
from elkbuild.digests import sha256_file
from elkbuild.errors import UsageError
from elkbuild.sushi.check import parse_json
from elkbuild.sushi.service import plugins_in_config

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
RELEASE_META = ("manifest.json", "digest", "sushi-config", "sushi-plugins")
BOARD_ARCH = "aarch64"


@dataclass(frozen=True)
class PayloadFile:
    rel: str                    # path inside a release, e.g. plugins/X.vst3/Contents/...
    sha256: str
    size: int
    mode: int                   # 0o755 or 0o644
    source: Path | None = None  # a local file, or
    data: bytes | None = None   # content made in memory (a rendered config)

    def open(self) -> io.BufferedIOBase:
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.source is not None
        return self.source.open("rb")


@dataclass
class Payload:
    files: dict[str, PayloadFile] = field(default_factory=dict)
    sushi_config: str | None = None      # file name under config_files/
    plugins: list[str] = field(default_factory=list)   # bundle directory names
    bundle_sources: dict[str, Path] = field(default_factory=dict)
    """The local folder of each bundle sent (name -> path): what the ABI gate reads."""

    def entries(self) -> dict[str, dict[str, Any]]:
        return {rel: {"sha256": f.sha256, "size": f.size, "mode": f"{f.mode:04o}"}
                for rel, f in sorted(self.files.items())}

    def digest(self) -> str:
        canon = json.dumps({"format": MANIFEST_FORMAT, "files": {
            rel: [e["sha256"], e["mode"]] for rel, e in self.entries().items()},
            "sushi_config": self.sushi_config}, sort_keys=True)
        return hashlib.sha256(canon.encode()).hexdigest()

    def manifest(self, release: str) -> dict[str, Any]:
        return {"format": MANIFEST_FORMAT, "release": release, "digest": self.digest(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "sushi_config": self.sushi_config, "plugins": sorted(self.plugins),
                "files": self.entries()}

    def expected_bundles(self) -> list[str]:
        """The deployed bundles that the Sushi config loads (checked after a start)."""
        if not self.sushi_config:
            return []
        config = self.files.get(f"config_files/{self.sushi_config}")
        if config is None:
            return []
        text = config.data if config.data is not None else config.source.read_bytes()
        return [name for name in plugins_in_config(text) if name in set(self.plugins)]


def check_name(name: str, what: str) -> str:
    """A file or directory name that is safe to carry: any text but control characters.

    Names travel as data (SFTP paths, quoted argv), never as code, so `a;touch pwned`
    is a valid, literal name; newlines are refused because remote scripts read
    lists line by line.
    """
    if not name or name in (".", "..") or "/" in name:
        raise UsageError(f"{what}: {name!r} is not a usable file name",
                         "rename it (no '/', not '.' or '..')")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise UsageError(f"{what}: {name!r} contains a control character (newline, tab...)",
                         "rename it without control characters")
    if len(name.encode()) > 255:
        raise UsageError(f"{what}: name longer than 255 bytes: {name[:40]!r}...",
                         "use a shorter name")
    return name


def _add_file(payload: Payload, rel: str, path: Path) -> None:
    info = path.stat()
    mode = 0o755 if info.st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH) else 0o644
    payload.files[rel] = PayloadFile(rel, sha256_file(path), info.st_size, mode, source=path)


def add_bundle(payload: Payload, bundle: Path, what: str | None = None) -> None:
    """A VST3 bundle folder as Sushi loads it (its aarch64 code folder must be there).

    `what` names the bundle in messages (default: its path).
    """
    layout = BundleLayout(Path(bundle))
    bundle = layout.path
    what = what or str(bundle)
    if not bundle.is_dir() or not layout.has_suffix:
        raise UsageError(f"{what}: not a .vst3 bundle directory",
                         "pass the bundle folder (Name.vst3) or a built plugin project's name")
    name = check_name(bundle.name, what)
    binary = layout.binary(BOARD_ARCH)
    if not binary.is_file():
        old = layout.legacy_code_dir(BOARD_ARCH)
        code_dir = binary.parent.name
        hint = (f"rename {old} to {code_dir} (older JUCE names it {old.name}; "
                f"Sushi looks in {code_dir})" if old is not None
                else "build the plugin for aarch64 (Elk's Raspberry Pi 4)")
        raise UsageError(f"{what}: no {layout.relative(binary)} in the bundle", hint)
    if name in payload.plugins:
        raise UsageError(f"{what}: a bundle named {name!r} is already in this deploy",
                         "give each plugin once")
    payload.plugins.append(name)
    payload.bundle_sources[name] = bundle
    for rel_parts, path in bundle_files(bundle, what):
        rel = PurePosixPath("plugins", name, *rel_parts)
        _add_file(payload, str(rel), path)


_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device"}


def _shown(path: Path) -> str:
    """A path for a message, undecodable bytes escaped (\\xff) instead of crashing."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def bundle_files(bundle: Path, what: str) -> list[tuple[tuple[str, ...], Path]]:
    """Every regular file below `bundle` (symlinks to files and folders followed),
    sorted; anything else is refused up front, naming the path, before a byte is
    read: a FIFO would block the deploy forever, a device is no plugin file."""
    found: list[tuple[tuple[str, ...], Path]] = []
    seen: set[tuple[int, int]] = set()

    def refuse(path: Path, problem: str, hint: str) -> UsageError:
        return UsageError(f"{what}: {_shown(path)}: {problem}", hint)

    def walk(directory: Path, parts: tuple[str, ...]) -> None:
        info = directory.stat()
        if (info.st_dev, info.st_ino) in seen:
            raise refuse(directory, "a symlink loop (this folder contains itself)",
                         "remove the link that points back up")
        seen.add((info.st_dev, info.st_ino))
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            path = Path(entry.path)
            try:
                entry.name.encode("utf-8")
            except UnicodeEncodeError:
                raise refuse(path, "the name is not valid UTF-8",
                             "rename it (Sushi and the board expect UTF-8 names)") from None
            check_name(entry.name, f"{what}: file in {_shown(directory)}")
            try:
                mode = path.stat().st_mode
            except FileNotFoundError:
                raise refuse(path, "a dangling symlink (its target does not exist)",
                             "remove it or point it at a file in the bundle") from None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise refuse(path, "a symlink loop", "remove the link") from None
                raise refuse(path, f"cannot be read: {exc.strerror}",
                             "check its permissions") from None
            if stat.S_ISDIR(mode):
                walk(path, (*parts, entry.name))
            elif stat.S_ISREG(mode):
                found.append(((*parts, entry.name), path))
            else:
                kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
                raise refuse(path, f"{kind}, not a regular file; only files and folders "
                             "are deployed", "remove it from the bundle")

    walk(bundle, ())
    return found


def add_model(payload: Payload, model: Path, what: str | None = None) -> None:
    """A model file for plugins/models/ (`what` names it in messages)."""
    model = Path(model)
    what = what or f"model {str(model)!r}"
    if not model.is_file():
        if model.exists():
            raise UsageError(f"{what}: not a regular file", "give a model file")
        raise UsageError(f"{what}: no such file", "check the path")
    name = check_name(model.name, what)
    _add_file(payload, f"plugins/models/{name}", model)


def add_sushi_config(payload: Payload, name: str, data: bytes, source: str) -> None:
    """The config Sushi is started with (JSON checked here, before the board is touched)."""
    name = check_name(name, f"Sushi config {source}")
    if not name.endswith(".json"):
        name += ".json"
    parse_json(data, source)  # as Sushi would read it, before the board is touched
    rel = f"config_files/{name}"
    payload.files[rel] = PayloadFile(rel, hashlib.sha256(data).hexdigest(), len(data), 0o644,
                                     data=data)
    payload.sushi_config = name


def collect_payload(bundles: Iterable[Path] = (), config: tuple[str, bytes, str] | None = None,
                    models: Iterable[Path] = (), *,
                    labels: Mapping[Path, str] | None = None) -> Payload:
    """Everything a deploy sends: bundles, models, and (name, JSON bytes, source) config.

    `labels` names given paths in messages as the user gave them.
    """
    labels = labels or {}
    payload = Payload()
    for bundle in bundles:
        add_bundle(payload, bundle, labels.get(bundle))
    for model in models:
        add_model(payload, model, labels.get(model))
    if config is not None:
        add_sushi_config(payload, *config)
    if not payload.files:
        raise UsageError("nothing to deploy", "give a plugin bundle, a Sushi config or a rig")
    return payload


def part_of(rel: str) -> str:
    """A release has three parts, each replaced as a whole when a deploy names it."""
    if rel.startswith("config_files/"):
        return "config"
    if rel.startswith("plugins/models/"):
        return "models"
    return "bundles"


def inherit(payload: Payload, current: dict[str, Any] | None) -> Payload:
    """What the payload leaves out, the new release keeps from the current one:
    deploying only a config keeps the plugins, deploying only plugins keeps the
    config, deploying only models keeps both."""
    if not current:
        return payload
    given = {part_of(rel) for rel in payload.files}
    merged = Payload(dict(payload.files), payload.sushi_config, list(payload.plugins))
    for rel, entry in current.get("files", {}).items():
        if part_of(rel) not in given:
            merged.files[rel] = PayloadFile(rel, entry["sha256"], int(entry["size"]),
                                            int(entry["mode"], 8))
    if "bundles" not in given:
        merged.plugins = list(current.get("plugins", []))
    if "config" not in given:
        merged.sushi_config = current.get("sushi_config")
    return merged
