"""The build cache key: one digest over every input of a staged dependency.

Each input is hashed on its own and named ("recipe", "source tensorflow",
"patch tflite-2.11.0/flatbuffers-v2.0.8.patch", "toolchain", "option variant"),
so when the key differs elkbuild can say WHICH input changed. Computing the key
reads only small files and pins: an unchanged rebuild costs milliseconds.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Mapping

from elkbuild.deps.recipes import Recipe, canonical

RUNNER_FORMAT = "1"
"""Bumped when the way elkbuild builds or stages changes what a prefix contains."""


def tree_digest(path: Path) -> str:
    """Content hash of a file or folder (names, modes, bytes; symlinks by target)."""
    digest = hashlib.sha256()
    if path.is_file():
        digest.update(path.read_bytes())
        return digest.hexdigest()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            file = Path(root, name)
            rel = file.relative_to(path).as_posix()
            digest.update(rel.encode() + b"\0")
            if file.is_symlink():
                digest.update(b"->" + os.readlink(file).encode())
            else:
                digest.update(str(file.stat().st_mode & 0o111).encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()


def inputs(recipe: Recipe, source_pins: Mapping[str, str], toolchain_identity: str,
           options: Mapping[str, str]) -> dict[str, str]:
    """Named digests of every input. `source_pins`: source id -> sha256/version."""
    named = {"recipe": recipe.digest(), "toolchain": toolchain_identity, "elkbuild": RUNNER_FORMAT}
    for source_id, pin in source_pins.items():
        named[f"source {source_id}"] = pin
    for name, file in zip(recipe.patches, recipe.patch_files()):
        named[f"patch {name}"] = hashlib.sha256(file.read_bytes()).hexdigest()
    for key, value in options.items():
        named[f"option {key}"] = str(value)
    return named


def key(named: Mapping[str, str]) -> str:
    return hashlib.sha256(canonical(dict(named)).encode()).hexdigest()


def changed(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Names of the inputs that differ (added, removed or changed), sorted."""
    names = set(old) | set(new)
    return sorted(n for n in names if old.get(n) != new.get(n))
