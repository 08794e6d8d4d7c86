"""The emulated Elk board: a real arm64 Debian userland under qemu-user, reached
over a real sshd on a loopback port, with Elk's user, folders, Sushi stand-in and
Xenomai 3 / EVL real-time statistics. See README.md beside this file for how it
differs from a real Raspberry Pi 4 running Elk Audio OS.
"""

from __future__ import annotations

from elkbuild.emulated_board.instance import (DEFAULT_NAME, DEFAULT_PORT, HOST, PASSWORD, PROFILES,
                       SUSHI_AUDIO_THREAD, SUSHI_MAIN_THREAD, SUSHI_WORKER_THREAD, USER,
                       EmulatedBoard, free_port)

__all__ = ["EmulatedBoard", "free_port", "DEFAULT_NAME", "DEFAULT_PORT", "HOST", "PASSWORD",
           "PROFILES", "USER", "SUSHI_AUDIO_THREAD", "SUSHI_MAIN_THREAD", "SUSHI_WORKER_THREAD"]
