"""Unpacking source archives (tar.*, .tgz, .zip) safely into a folder."""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from elkbuild.errors import BuildError


def _strip(name: str, levels: int) -> str | None:
    parts = PurePosixPath(name).parts[levels:]
    return "/".join(parts) if parts else None


def extract(archive: Path, dest: Path, strip_components: int = 1) -> None:
    """Unpack `archive` into `dest`, dropping `strip_components` leading folders.

    The "data" filter refuses absolute paths, links leaving the tree and device
    files, so a hostile archive cannot write outside `dest`.
    """
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                name = _strip(info.filename, strip_components)
                if not name or info.is_dir():
                    continue
                target = (dest / name).resolve()
                if dest.resolve() not in target.parents:
                    raise BuildError(f"{archive}: member {info.filename!r} would land outside the tree")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    target.chmod(mode)
        return
    try:
        with tarfile.open(archive) as tf:
            members = []
            for member in tf.getmembers():
                name = _strip(member.name, strip_components)
                if not name:
                    continue
                member.name = name
                if member.islnk():
                    link = _strip(member.linkname, strip_components)
                    if link is None:
                        continue
                    member.linkname = link
                members.append(member)
            tf.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise BuildError(f"cannot unpack {archive}: {error}",
                         "the cached file may be damaged; delete it and fetch again") from None
