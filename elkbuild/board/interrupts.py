"""Ctrl-C during board work, handled in one place.

While `first_interrupt_cancels()` is active, SIGINT only sets a flag; the SSH
executor and the transfers check it between blocks and polls and raise
`Interrupted` there (never inside paramiko, which an asynchronous
KeyboardInterrupt leaves waiting for replies that nobody reads). Clean-up code
runs `shielded()`, so the flag does not stop it; it is bounded by timeouts.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Iterator

_cancelled = threading.Event()
_local = threading.local()


class Interrupted(KeyboardInterrupt):
    """Raised where board work noticed the first Ctrl-C."""


def cancelled() -> bool:
    return _cancelled.is_set()


def raise_if_cancelled() -> None:
    if _cancelled.is_set() and not getattr(_local, "shielded", False):
        raise Interrupted()


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Clean-up after an interrupt: checks in this thread do not raise."""
    before = getattr(_local, "shielded", False)
    _local.shielded = True
    try:
        yield
    finally:
        _local.shielded = before


@contextlib.contextmanager
def first_interrupt_cancels(note: str = "interrupted; cleaning up the board") -> Iterator[None]:
    """SIGINT cancels the board work inside; KeyboardInterrupt is raised at the end.

    Later Ctrl-Cs are ignored: the clean-up they would cut short is what keeps
    the board consistent, and it is bounded. Outside the main thread (where
    signals cannot be caught) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(_signum: int, _frame: object) -> None:
        if not _cancelled.is_set():
            _cancelled.set()
            print(f"elkbuild: {note}", file=sys.stderr, flush=True)

    _cancelled.clear()
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        was_cancelled = _cancelled.is_set()
        _cancelled.clear()
    if was_cancelled:
        raise Interrupted()
