"""Staging a release on the board through the SSH executor's transfers: read the
current manifest, make the .partial tree, send the files and the release's
metadata. No process runs on the board for any of it (SFTP; SCP needs a few)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Callable

from elkbuild.board.ssh_executor import SshExecutor
from elkbuild.deploy.payload import MANIFEST, MANIFEST_FORMAT, Payload, PayloadFile
from elkbuild.deploy.plan import Plan, staging_dirs

if TYPE_CHECKING:
    from elkbuild.config import Board

log = logging.getLogger("elkbuild.deploy")

ProgressSink = Callable[[str, int, int], None]
"""progress(description, bytes_done_delta, bytes_total)"""


def partial_dir(board: Board, release: str) -> str:
    return f"{board.release_root}/releases/{release}.partial"


def read_manifest(executor: SshExecutor, board: Board) -> dict[str, Any] | None:
    """The current release's manifest, or None (no release, or one we cannot trust)."""
    path = f"{board.release_root}/current/{MANIFEST}"
    try:
        text = executor.read_bytes(path)
    except FileNotFoundError:
        return None
    try:
        manifest = json.loads(text)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT \
            or not isinstance(manifest.get("files"), dict):
        # not ours to trust: send everything, as to a new board
        log.warning("%s: %s is damaged or of an unknown format; sending every file",
                    board.address, path)
        return None
    return manifest


def fetch_inherited_config(executor: SshExecutor, board: Board, payload: Payload) -> None:
    """A config kept from the current release is read back: its plugin list decides
    which of the new bundles the health window expects Sushi to load."""
    rel = f"config_files/{payload.sushi_config}" if payload.sushi_config else None
    item = payload.files.get(rel) if rel else None
    if item is None or item.data is not None or item.source is not None:
        return
    data = executor.read_bytes(f"{board.release_root}/current/{rel}")
    payload.files[rel] = PayloadFile(rel, item.sha256, item.size, item.mode, data=data)


def stage(executor: SshExecutor, board: Board, plan: Plan, payload: Payload,
          progress: ProgressSink | None = None) -> None:
    """The .partial tree of the new release: directories, new files, metadata."""
    partial = partial_dir(board, plan.release)
    executor.make_dirs(staging_dirs(partial, plan.directories))
    for item in plan.uploads:
        executor.upload(item.open, f"{partial}/{item.rel}", size=item.size, mode=item.mode,
                        on_bytes=_progress_of(item.rel, plan.bytes_to_send, progress))
    manifest = json.dumps(payload.manifest(plan.release), indent=1, sort_keys=True).encode()
    for name, data in (("digest", payload.digest() + "\n"),
                       ("sushi-config", (payload.sushi_config or "") + "\n"),
                       ("sushi-plugins", "".join(n + "\n" for n in payload.expected_bundles())),
                       (MANIFEST, manifest)):
        executor.write_bytes(f"{partial}/{name}", data.encode() if isinstance(data, str) else data)


def _progress_of(rel: str, total: int, progress: ProgressSink | None) -> Callable[[int], None] | None:
    if progress is None:
        return None
    return lambda sent: progress(rel, sent, total)
