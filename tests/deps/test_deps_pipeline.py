"""The recipe pipeline end to end with the real cross compiler inside the toolchain container.

A tarball made here (file URL) -> sha256 -> extract -> patch -> FetchContent
routed through the cache (offline, from a hand-carried file) -> cross-configure
-> build -> install -> staged prefix of aarch64 ELF files owned by the invoking
user. Then the same build again: up to date, no container started.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from deps_helpers import make_tarball, sha256_of, write_recipe
from deps_real_parts import container_project, elk_sdk_project
from elftools.elf.elffile import ELFFile

from elkbuild.executor import LocalExecutor
from elkbuild.deps import DepsRunner
from elkbuild.deps.recipes import load_recipes
from elkbuild.elf import elf_machine

pytestmark = pytest.mark.slow

TINYDEP = {
    "include/tinydep.h": "#pragma once\n#define TINYDEP_ANSWER 42\n",
}

GREET = {
    "CMakeLists.txt": """\
cmake_minimum_required(VERSION 3.16)
project(greet CXX)
include(FetchContent)
list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_SOURCE_DIR}/cmake/modules")
include(tinydep)
FetchContent_GetProperties(tinydep)
if(NOT tinydep_POPULATED)
  FetchContent_Populate(tinydep)
endif()
if(NOT CMAKE_SYSTEM_PROCESSOR STREQUAL "aarch64")
  message(FATAL_ERROR "processor is ${CMAKE_SYSTEM_PROCESSOR}")
endif()
foreach(kind SHARED STATIC)
  string(TOLOWER "greet_${kind}" target)
  add_library(${target} ${kind} src/greet.cpp)
  target_include_directories(${target} PRIVATE include "${tinydep_SOURCE_DIR}/include")
endforeach()
set_target_properties(greet_shared PROPERTIES OUTPUT_NAME greet)
install(TARGETS greet_shared greet_static LIBRARY DESTINATION lib ARCHIVE DESTINATION lib)
install(FILES include/greet.h DESTINATION include)
""",
    "cmake/modules/OverridableFetchContent.cmake": """\
function(OverridableFetchContent_Declare name)
  FetchContent_Declare(${name} ${ARGN})
endfunction()
""",
    "include/greet.h": "#pragma once\nextern \"C\" const char* greet();\nextern \"C\" int answer();\n",
    "src/greet.cpp": """\
#include "greet.h"
#include "tinydep.h"
extern "C" const char* greet() { return "hello"; }
extern "C" int answer() { return TINYDEP_ANSWER; }
""",
}

PATCH = """\
--- a/src/greet.cpp
+++ b/src/greet.cpp
@@ -2,3 +2,3 @@
 #include "tinydep.h"
-extern "C" const char* greet() { return "hello"; }
+extern "C" const char* greet() { return "hello from a patched elkbuild recipe"; }
 extern "C" int answer() { return TINYDEP_ANSWER; }
"""

RECIPE = """\
name: greet
version: '1.0'
toolchains: [debian-arm64, "elk-sdk-*"]
sources:
  - {{id: greet, url: '{url}', sha256: '{sha}'}}
patches: [greet/message.patch]
fetchcontent:
  modules: cmake/modules
  contents: [tinydep]
build:
  system: cmake
  system_processor: aarch64
  cxxflags: [-Wno-psabi]
  cmake_install: true
install:
  - {{from: install, glob: "include/*.h", to: include}}
  - {{from: install, glob: "lib/libgreet*", to: lib}}
outputs: [include/greet.h, lib/libgreet.so, lib/libgreet_static.a]
"""


@pytest.mark.parametrize("toolchain_name", ["debian-arm64", "elk-sdk-1.0.0"])
def test_tarball_to_staged_aarch64_prefix_in_the_container(toolchain_name: str, tmp_path: Path, request):
    """elk-sdk-1.0.0 is a stand-in SDK of the real shape (environment script, OE toolchain
    file that derives the processor from the sysroot name), built from Debian's compiler."""
    setup = container_project if toolchain_name == "debian-arm64" else elk_sdk_project
    project, toolchain, make_executor = setup(request, tmp_path)
    assert toolchain.name == toolchain_name
    tinydep = make_tarball(tmp_path / "up" / "tinydep-0.1.tar.gz", TINYDEP, "tinydep-0.1")
    files = dict(GREET)
    # The dependency's URL is unreachable on purpose: only the source cache can provide it.
    files["cmake/modules/tinydep.cmake"] = (
        "include(OverridableFetchContent)\nOverridableFetchContent_Declare(\n  tinydep\n"
        "  URL https://downloads.example.invalid/tinydep-0.1.tar.gz\n"
        f"  URL_HASH SHA256={sha256_of(tinydep)}\n)\n")
    greet = make_tarball(tmp_path / "up" / "greet-1.0.tar.gz", files, "greet-1.0")
    recipes = tmp_path / "recipes-home" / "recipes"
    write_recipe(recipes, "greet", RECIPE.format(url=greet.as_uri(), sha=sha256_of(greet)))
    (recipes.parent / "patches" / "greet").mkdir(parents=True)
    (recipes.parent / "patches" / "greet" / "message.patch").write_text(PATCH)

    # Carried onto the machine by hand, so the whole build can run --offline.
    incoming = project.cache_dir / "sources" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    (incoming / "greet-1.0.tar.gz").write_bytes(greet.read_bytes())
    (incoming / "tinydep-0.1.tar.gz").write_bytes(tinydep.read_bytes())

    started: list[int] = []

    def counting_factory():
        started.append(1)
        return make_executor()

    runner = DepsRunner(project, toolchain, make_executor=counting_factory, offline=True,
                        jobs=2, recipes=load_recipes([recipes]), fetch_executor=LocalExecutor())
    (result,) = runner.build()
    assert result.status == "built" and started == [1]
    prefix = project.build_dir / "deps" / toolchain_name / "greet-1.0"
    assert result.prefix == prefix

    shared = prefix / "lib" / "libgreet.so"
    static = prefix / "lib" / "libgreet_static.a"
    with open(shared, "rb") as handle:
        elf = ELFFile(handle)
        assert elf.header["e_machine"] == "EM_AARCH64"
        assert elf.get_section_by_name(".dynsym").get_symbol_by_name("greet")
    assert elf_machine(static) == "EM_AARCH64"
    assert b"hello from a patched elkbuild recipe" in shared.read_bytes()
    assert (prefix / "include" / "greet.h").is_file()
    cache = (project.build_dir / "deps" / toolchain_name / ".work" / "greet-1.0" / "build" / "CMakeCache.txt").read_text()
    (flags,) = [line for line in cache.splitlines() if line.startswith("CMAKE_CXX_FLAGS:")]
    # The toolchain's CPU flags survive; the recipe's flag is added once.
    assert "-mcpu=cortex-a72" in flags and flags.count("-Wno-psabi") == 1

    uid, gid = os.getuid(), os.getgid()
    for path in [prefix, *prefix.rglob("*"), *(project.build_dir / "deps" / toolchain_name / ".work").rglob("*")]:
        info = path.lstat()
        assert (info.st_uid, info.st_gid) == (uid, gid), path

    # Unchanged: up to date, and no container is started.
    again = DepsRunner(project, toolchain, make_executor=counting_factory, offline=True,
                       recipes=load_recipes([recipes]), fetch_executor=LocalExecutor())
    (second,) = again.build()
    assert second.status == "up to date" and started == [1]
    # Both hand-carried files were adopted into the cache (or were there already).
    for name in ("greet-1.0.tar.gz", "tinydep-0.1.tar.gz"):
        (incoming / name).unlink(missing_ok=True)
