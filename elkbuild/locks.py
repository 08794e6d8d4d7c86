"""One way to serialise elkbuild processes that share a cache: an flock on a file."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive flock on `lock_file` (made, with its folder, if missing)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
