"""Ctrl-C during board work is handled once: it only sets a flag, board work stops at
its next check, clean-up runs shielded, and KeyboardInterrupt comes at the end."""

from __future__ import annotations

import os
import signal

import pytest

from elkbuild.board import interrupts


def test_the_first_sigint_cancels_later_ones_are_ignored_and_cleanup_still_runs(capsys):
    cleaned = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.first_interrupt_cancels():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C: no second exception
            assert interrupts.cancelled()
            with pytest.raises(interrupts.Interrupted):
                interrupts.raise_if_cancelled()
            with interrupts.shielded():
                interrupts.raise_if_cancelled()  # the abort step is not cut short
                cleaned.append("abort")
    assert cleaned == ["abort"]
    assert not interrupts.cancelled()
    assert capsys.readouterr().err.count("interrupted") == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_without_an_interrupt_nothing_is_raised():
    with interrupts.first_interrupt_cancels():
        interrupts.raise_if_cancelled()
