"""Planning a release: which files travel and which are copied on the board from
the current release (same content and mode, not changed there), and the new
release's name."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Mapping

from elkbuild.deploy.payload import Payload, PayloadFile
from elkbuild.errors import BoardError


@dataclass
class Plan:
    release: str
    uploads: list[PayloadFile]
    links: list[tuple[str, str]]      # (path in current release, path in new release): copied
    directories: list[str]

    @property
    def bytes_to_send(self) -> int:
        return sum(f.size for f in self.uploads)


def release_name(digest: str, now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    return f"{stamp}-{digest[:12]}"


def plan_release(payload: Payload, current: dict[str, Any] | None, release: str,
                 drifted: Mapping[str, str] | None = None) -> Plan:
    """Which files must travel and which are copied from the current release;
    a file `drifted` on the board is never a source (it is sent again)."""
    drifted = drifted or {}
    have: dict[tuple[str, str], str] = {}
    for rel, entry in (current or {}).get("files", {}).items():
        if rel not in drifted:
            have.setdefault((entry["sha256"], entry["mode"]), rel)
    uploads: list[PayloadFile] = []
    links: list[tuple[str, str]] = []
    for rel, item in sorted(payload.files.items()):
        source = have.get((item.sha256, f"{item.mode:04o}"))
        if source is not None:
            links.append((source, rel))
        elif item.source is None and item.data is None:
            why = f" ({drifted[rel]})" if rel in drifted else ""
            raise BoardError(f"the board's current release lacks a good copy of {rel}{why}",
                             "deploy the plugins, models and config again in full")
        else:
            uploads.append(item)
    directories = sorted({str(PurePosixPath(rel).parent) for rel in payload.files}
                         | {"plugins", "config_files"})
    return Plan(release, uploads, links, directories)


def staging_dirs(base: str, directories: list[str]) -> list[str]:
    """`base` and every directory below it that the release needs, parents first."""
    wanted = [PurePosixPath(base)]
    for directory in directories:
        path = PurePosixPath(base, directory)
        wanted += [*reversed(path.parents[: len(PurePosixPath(directory).parts) - 1]), path]
    return list(dict.fromkeys(str(path) for path in wanted))
