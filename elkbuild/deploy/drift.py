"""Is the current release on the board still what its manifest says?

Cheap by default: every file's size and mode, and its mtime against the
manifest's (a release's files are all written before its manifest, and copies
keep their mtime, so a later mtime means an edit on the board). With `verify`,
every file's SHA-256 too (one `sha256sum` command).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from elkbuild.deploy.payload import MANIFEST
from elkbuild.executor import Executor

if TYPE_CHECKING:
    from elkbuild.config import Board

BATCH = 200


def drifted_files(executor: Executor, board: Board, manifest: dict[str, Any],
                  verify: bool = False) -> dict[str, str]:
    """{path in the release: what is wrong with it} for the current release."""
    root = f"{board.release_root}/current"
    entries: dict[str, dict[str, Any]] = manifest.get("files", {})
    paths = {rel: f"{root}/{rel}" for rel in entries}
    stats = executor.file_stats([*paths.values(), f"{root}/{MANIFEST}"])
    sealed = stats.get(f"{root}/{MANIFEST}")
    sealed_at = sealed[1] if sealed else None
    wrong: dict[str, str] = {}
    for rel, entry in sorted(entries.items()):
        found = stats.get(paths[rel])
        if found is None:
            wrong[rel] = "missing"
            continue
        size, mtime, mode = found
        if size != int(entry["size"]):
            wrong[rel] = f"{size} bytes, the manifest says {entry['size']}"
        elif mode != int(entry["mode"], 8):
            wrong[rel] = f"mode {mode:04o}, the manifest says {entry['mode']}"
        elif sealed_at is not None and mtime > sealed_at:
            wrong[rel] = "changed after the release was made"
    if verify:
        rest = [rel for rel in sorted(entries) if rel not in wrong]
        for start in range(0, len(rest), BATCH):
            batch = rest[start:start + BATCH]
            done = executor.run(["sha256sum", "--", *batch], cwd=root, check=False)
            sums = {}
            for line in done.stdout.splitlines():
                digest, _, name = line.partition("  ")
                sums[name] = digest
            for rel in batch:
                if sums.get(rel) != entries[rel]["sha256"]:
                    wrong[rel] = "content differs from the manifest (sha256)"
    return wrong
