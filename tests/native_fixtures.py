"""Native (x86_64) plugin builds the plugin tests share (pytest plugin loaded by
tests/conftest.py): one build of the ONNX example per session, under the cache, so
a second session only relinks what changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import REPO, require_real_part

from elkbuild.config import load_config
from elkbuild.executor import LocalExecutor
from elkbuild.plugin.native_build import NativeBuild, build_native


def require_native_build_tools() -> None:
    """JUCE's CMake package, a host C++ compiler and cmake: what build_native needs."""
    require_real_part(any(Path("/usr/lib/x86_64-linux-gnu/cmake").glob("JUCE-*/JUCEConfig.cmake")),
                      "JUCE's CMake package", "apt-get install juce-modules-source juce-tools")
    require_real_part(shutil.which("c++") is not None and shutil.which("cmake") is not None,
                      "a host C++ compiler and cmake", "apt-get install g++ cmake")


@pytest.fixture(scope="session")
def host_dir() -> Path:
    """Where elkbuild's VST3 host is built for the tests: in the cache, keyed on its
    sources and compiler, so a second run reuses it."""
    return load_config(REPO).cache_dir / "test-builds" / "vst3host"


@pytest.fixture(scope="session")
def saturator_build() -> NativeBuild:
    require_native_build_tools()
    cache = load_config(REPO).cache_dir
    build = build_native(REPO / "plugins" / "NeuralSaturator", LocalExecutor(), cache,
                         cache / "test-builds", jobs=2)
    print(f"native build of NeuralSaturator: {build.seconds:.1f} s")
    return build
