"""Shared test helpers.

Real parts (Docker engine, cross compiler, emulated board, sshd) are required in
CI: there a missing part FAILS the run instead of skipping, because a green run
that skipped the board tested nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["board_fixtures", "docker_fixtures", "native_fixtures"]

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_real_part(available: bool, what: str, how_to_get: str) -> None:
    """Skip locally, fail in CI, when a real part a test needs is missing."""
    if available:
        return
    message = f"{what} is not available: {how_to_get}"
    if IN_CI:
        pytest.fail(f"CI requires the real part: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def repo() -> Path:
    return REPO
