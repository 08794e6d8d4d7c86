"""FetchContent routing and the exact CMake command for the Elk SDK toolchain."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from deps_helpers import FIXTURES, project  # noqa: F401 - fixture

from elkbuild.deps import cmake_build, fetchcontent
from elkbuild.deps.patching import apply_patches
from elkbuild.deps.recipes import BUILTIN_RECIPES, FetchContentSpec, load_recipes, select
from elkbuild.errors import BuildError
from elkbuild.build.toolchains import get_toolchain

MODULES = "tensorflow/lite/tools/cmake/modules"


def tflite_recipe():
    return select(load_recipes([BUILTIN_RECIPES]), "elk-sdk-1.0.0", only="tflite")[0]


def test_declarations_are_read_from_the_modules(tmp_path: Path):
    modules = tmp_path / "modules"
    shutil.copytree(FIXTURES / "tflite-2.11.0" / MODULES, modules)
    (modules / "fft2d.cmake").write_text(
        "OverridableFetchContent_Declare(\n  fft2d\n  URL https://example.org/fft2d-1.0.tar.gz\n"
        "  # comment ( with a paren\n  URL_HASH SHA256=" + "ab" * 32 + "\n  SOURCE_DIR \"${CMAKE_BINARY_DIR}/fft2d\"\n)\n")
    found = fetchcontent.declarations(modules)
    assert found["flatbuffers"].values == {"GIT_REPOSITORY": "https://github.com/google/flatbuffers",
                                           "GIT_TAG": "v2.0.6"}
    fft = fetchcontent.to_source(found["fft2d"])
    assert (fft.kind, fft.url, fft.sha256) == ("url", "https://example.org/fft2d-1.0.tar.gz", "ab" * 32)


def test_patched_tree_routes_flatbuffers_v2_0_8_through_the_cache(tmp_path: Path):
    tree = tmp_path / "src"
    shutil.copytree(FIXTURES / "tflite-2.11.0", tree)
    recipe = tflite_recipe()
    apply_patches(tree, recipe.patch_files())
    routed = fetchcontent.discover(tree, FetchContentSpec(MODULES, ("flatbuffers",)), recipe.file)
    assert len(routed) == 1
    content, source = routed[0]
    assert content == "flatbuffers"
    assert source.url == "https://github.com/google/flatbuffers/archive/v2.0.8.tar.gz"
    # GitHub's archive digest was never seen here: pinned on first use, not invented.
    assert source.sha256 == "unknown"
    assert fetchcontent.cmake_variable("abseil-cpp") == "FETCHCONTENT_SOURCE_DIR_ABSEIL-CPP"


def test_undeclared_content_is_a_recipe_error(tmp_path: Path):
    with pytest.raises(BuildError) as info:
        fetchcontent.discover(FIXTURES / "tflite-2.11.0", FetchContentSpec(MODULES, ("eigen",)),
                              Path("tflite.yaml"))
    assert "names 'eigen'" in info.value.one_line()
    assert "declared there: flatbuffers" in info.value.one_line()


def test_cmake_command_for_the_elk_sdk_toolchain(project, tmp_path: Path):
    toolchain = get_toolchain("elk-sdk-1.0.0", project)
    recipe = tflite_recipe()
    work = tmp_path / "work"
    src = work / "src"
    fetch_dirs = {name: work / "fetch" / name for name in recipe.fetchcontent.contents}
    steps = cmake_build.plan(recipe, toolchain, work, src, fetch_dirs, jobs=2, use_ccache=False)
    configure, build = steps["commands"]
    sdk_file = toolchain.cmake_toolchain_file()
    wrapper = work / "build" / cmake_build.WRAPPER_NAME
    assert configure == [
        "cmake", "-S", f"{src}/tensorflow/lite", "-B", f"{work}/build",
        f"-DCMAKE_TOOLCHAIN_FILE={wrapper}",
        "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_INSTALL_PREFIX={work}/install",
        "-DFETCHCONTENT_FULLY_DISCONNECTED=ON",
        f"-DFETCHCONTENT_SOURCE_DIR_ABSEIL-CPP={work}/fetch/abseil-cpp",
        f"-DFETCHCONTENT_SOURCE_DIR_CPUINFO={work}/fetch/cpuinfo",
        f"-DFETCHCONTENT_SOURCE_DIR_EIGEN={work}/fetch/eigen",
        f"-DFETCHCONTENT_SOURCE_DIR_FARMHASH={work}/fetch/farmhash",
        f"-DFETCHCONTENT_SOURCE_DIR_FFT2D={work}/fetch/fft2d",
        f"-DFETCHCONTENT_SOURCE_DIR_FLATBUFFERS={work}/fetch/flatbuffers",
        f"-DFETCHCONTENT_SOURCE_DIR_GEMMLOWP={work}/fetch/gemmlowp",
        f"-DFETCHCONTENT_SOURCE_DIR_NEON2SSE={work}/fetch/neon2sse",
        f"-DFETCHCONTENT_SOURCE_DIR_RUY={work}/fetch/ruy",
        "-DTFLITE_ENABLE_XNNPACK=OFF",
    ]
    assert build == ["cmake", "--build", f"{work}/build", "--parallel", "2", "--target", "tensorflow-lite"]
    text = steps["wrapper_text"]
    lines = text.splitlines()
    # The SDK's own toolchain file first, then the processor fix, then the guide's flags.
    assert lines[1] == f'include("{sdk_file}")'
    assert "set(CMAKE_SYSTEM_PROCESSOR aarch64)" in lines
    assert lines.index("set(CMAKE_SYSTEM_PROCESSOR aarch64)") > 1
    for flag in ("-Wno-psabi", "-mcpu=cortex-a72", "-mtune=cortex-a72", "-O3", "-pipe", "-ffast-math",
                 "-feliminate-unused-debug-types", "-funroll-loops"):
        assert f'  string(APPEND _elkbuild_flags " {flag}")' in lines


def _probe(tmp_path: Path, before: str) -> str:
    """Run the wrapper twice (CMake re-reads toolchain files per try_compile) after `before`."""
    import subprocess

    recipe = tflite_recipe()
    script = tmp_path / "probe.cmake"
    script.write_text(before + cmake_build.wrapper_text(recipe, None) + cmake_build.wrapper_text(recipe, None)
                      + 'message(STATUS "C=${CMAKE_C_FLAGS}|INIT=${CMAKE_C_FLAGS_INIT}")\n')
    out = subprocess.run(["cmake", "-P", str(script)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_flags_join_the_toolchains_init_flags_once(tmp_path: Path):
    """Debian's toolchain file sets CMAKE_C_FLAGS_INIT (the CPU flags); they must survive."""
    got = _probe(tmp_path, 'set(CMAKE_C_FLAGS_INIT "-mcpu=cortex-a72")\n')
    assert got == "-- C=|INIT=-mcpu=cortex-a72 -Wno-psabi -mtune=cortex-a72"


def test_flags_append_to_a_cache_the_toolchain_forced_once(tmp_path: Path):
    """OE's toolchain file forces CMAKE_C_FLAGS from $CFLAGS on every read."""
    got = _probe(tmp_path, 'set(CMAKE_C_FLAGS "-O2 -g" CACHE STRING "" FORCE)\n')
    assert got == "-- C=-O2 -g -Wno-psabi -mcpu=cortex-a72 -mtune=cortex-a72|INIT="
