"""Fixtures for the Docker engine (pytest plugin loaded by tests/conftest.py).

`docker_engine` is a real engine: the user's (DOCKER_HOST or the default
socket), or elkbuild's private dockerd, started when none answers. In CI, and
locally with ELKBUILD_TEST_FRESH_ENGINE=1, it is a new private engine with an
empty data root, so images are built from nothing (seeded base -> image); it is
stopped and removed at the end of the session. DOCKER_HOST points at it for the
session, so every `connect()` in the code under test finds the same engine.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest
from conftest import IN_CI, require_real_part

from elkbuild.docker.engine import (
    private_engine,
    reachable_engine,
    start_private_engine,
    stop_private_engine,
)
from elkbuild.docker.images import ImageResult, ensure_image
from elkbuild.executor import LocalExecutor
from elkbuild.build.toolchains import Toolchain, default_cache_dir, get_toolchain

FRESH_ENGINE = IN_CI or os.environ.get("ELKBUILD_TEST_FRESH_ENGINE", "") not in ("", "0")


def _can_start_engine() -> bool:
    return (shutil.which("dockerd") is not None and shutil.which("mmdebstrap") is not None
            and os.geteuid() == 0)


@pytest.fixture(scope="session")
def elkbuild_cache() -> Path:
    """The elkbuild cache tests share (ELKBUILD_CACHE or ~/.cache/elkbuild)."""
    cache = default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    return cache


@pytest.fixture(scope="session")
def docker_engine(elkbuild_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A real engine (elkbuild.docker.api.DockerApi; its `sdk` is the Docker SDK client)."""
    how = ("apt-get install docker.io mmdebstrap and run the tests as root "
           "(they start a private dockerd), or start Docker and set DOCKER_HOST")
    if not FRESH_ENGINE:
        client = reachable_engine(elkbuild_cache, LocalExecutor())
        if client is None:
            require_real_part(_can_start_engine(), "a Docker engine", how)
            client = start_private_engine(LocalExecutor(), elkbuild_cache)
        yield client
        return
    require_real_part(_can_start_engine(), "a private Docker engine", how)
    # A short path: the engine's socket must fit in a unix socket address.
    home = Path(tmp_path_factory.mktemp("engine", numbered=True))
    executor = LocalExecutor()
    client = start_private_engine(executor, home)
    saved = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = private_engine(home).url
    try:
        yield client
    finally:
        if saved is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = saved
        client.close()
        stop_private_engine(executor, home)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def debian_arm64_image(docker_engine, elkbuild_cache: Path) -> ImageResult:
    """The debian-arm64 toolchain image, built (or found unchanged) once per session."""
    return ensure_image(docker_engine, get_toolchain("debian-arm64"), LocalExecutor(), elkbuild_cache)


@pytest.fixture(scope="session")
def elk_sdk_standin(docker_engine, debian_arm64_image: ImageResult, elkbuild_cache: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in Elk-PI SDK 1.0.0 installer made from the Debian cross compiler."""
    from elk_sdk_standin import make_standin_installer

    from elkbuild.config import load_config

    toolchain = get_toolchain("debian-arm64")
    cfg = load_config(tmp_path_factory.mktemp("standin-project"))
    return make_standin_installer(toolchain.executor(cfg), elkbuild_cache / "standin",
                                  version="1.0.0", sysroot=toolchain.sysroot or "",
                                  image_id=debian_arm64_image.image_id)


@pytest.fixture(scope="session")
def elk_sdk_toolchain(elk_sdk_standin: Path) -> Toolchain:
    return get_toolchain("elk-sdk-1.0.0").with_installer(elk_sdk_standin)


@pytest.fixture(scope="session")
def elk_sdk_image(docker_engine, elk_sdk_toolchain: Toolchain, elkbuild_cache: Path) -> ImageResult:
    """The elk-sdk-1.0.0 image with the stand-in SDK installed by its installer."""
    return ensure_image(docker_engine, elk_sdk_toolchain, LocalExecutor(), elkbuild_cache)
