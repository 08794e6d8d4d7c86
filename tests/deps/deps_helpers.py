"""Helpers for the dependency tests: test-made tarballs and recipes."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from elkbuild.config import load_config

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_tarball(path: Path, files: dict[str, str], top: str) -> Path:
    """A .tar.gz with every file under one top folder, like upstream release archives."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return path


def write_recipe(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f"{name}.yaml"
    file.write_text(body)
    return file


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An empty elkbuild project with its own cache; returns its Config."""
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.setenv("ELKBUILD_CACHE", str(tmp_path / "cache"))
    return load_config(root)
