"""The real parts the dependency integration tests build with.

By default (and always in CI) builds run inside the toolchain's container, on
the Docker engine of the `docker_engine` fixture, with the image elkbuild
builds for that toolchain (fixtures in tests/docker_fixtures.py). A developer without Docker may point
ELKBUILD_TEST_SYSROOT at an arm64 sysroot to run the same builds with the
host's aarch64 cross compiler instead; CI ignores that variable.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from conftest import IN_CI, require_real_part

from elkbuild.config import load_config
from elkbuild.executor import Executor
from elkbuild.build.toolchains import get_toolchain


def _local_toolchain(cfg: Any, sysroot: str) -> tuple[Any, Callable[[], Executor]]:
    toolchain = get_toolchain("debian-arm64", cfg)
    definition = dict(toolchain.definition)
    definition["sysroot"] = {**definition["sysroot"], "path": sysroot}
    toolchain = replace(toolchain, definition=definition)
    require_real_part(shutil.which(toolchain.compiler()) is not None,
                      f"the aarch64 cross compiler {toolchain.compiler()}",
                      "install bullseye's g++-10-aarch64-linux-gnu (see docker/debian-arm64.Dockerfile)")
    return toolchain, lambda: toolchain.executor(cfg, local=True)


def container_project(request: Any, tmp_path: Path) -> tuple[Any, Any, Callable[[], Executor]]:
    """(config, debian-arm64 toolchain, executor factory) for a fresh project in tmp_path.

    The project's cache is the shared elkbuild cache: the Docker engine, the
    toolchain image and the ccache live there, and sources are content-addressed.
    """
    root = tmp_path / "proj"
    root.mkdir(exist_ok=True)
    cfg = load_config(root)
    sysroot = os.environ.get("ELKBUILD_TEST_SYSROOT")
    if sysroot and not IN_CI:
        toolchain, factory = _local_toolchain(cfg, sysroot)
        return cfg, toolchain, factory
    toolchain = get_toolchain("debian-arm64", cfg)
    # The session's engine (DOCKER_HOST points at it) and the toolchain image on it.
    request.getfixturevalue("debian_arm64_image")
    return cfg, toolchain, lambda: toolchain.executor(cfg)


def elk_sdk_project(request: Any, tmp_path: Path) -> tuple[Any, Any, Callable[[], Executor]]:
    """Like container_project, for the Elk SDK 1.0.0 toolchain (a stand-in SDK of the real shape)."""
    root = tmp_path / "proj"
    root.mkdir(exist_ok=True)
    cfg = load_config(root)
    toolchain = request.getfixturevalue("elk_sdk_toolchain")
    request.getfixturevalue("elk_sdk_image")
    toolchain = replace(toolchain, cache_dir=cfg.cache_dir)
    return cfg, toolchain, lambda: toolchain.executor(cfg)
