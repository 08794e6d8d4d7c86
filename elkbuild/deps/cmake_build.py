"""The CMake steps of a recipe: configure, build, install, as argv lists.

Pure functions make the commands (so the exact command line for a toolchain is
testable without a compiler); `run_cmake` sends them through the executor.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Mapping, Sequence

from elkbuild.executor import Executor, LineSink
from elkbuild.deps.fetchcontent import cmake_variable
from elkbuild.deps.recipes import Recipe

WRAPPER_NAME = "elkbuild-recipe-toolchain.cmake"


def toolchain_file_of(args: Sequence[str]) -> str | None:
    for arg in args:
        if arg.startswith("-DCMAKE_TOOLCHAIN_FILE="):
            return arg.split("=", 1)[1]
    return None


def wrapper_text(recipe: Recipe, original: str | None) -> str:
    """A toolchain file that includes the toolchain's own, then the recipe's fixes.

    Flags are appended in the toolchain file rather than through $CFLAGS or -D:
    the Elk SDK's environment script and its OEToolchainConfig.cmake overwrite
    both on every read. Appending only when absent keeps re-reads (one per
    try_compile) from repeating them.
    """
    lines = [f"# Written by elkbuild for the {recipe.key} recipe ({recipe.file.name})."]
    if original:
        lines.append(f'include("{original}")')
    if recipe.build.system_processor:
        lines += ["# OE's toolchain file derives the processor from the sysroot name (cortexa72);",
                  "# Abseil, and so TensorFlow Lite, accept only aarch64.",
                  f"set(CMAKE_SYSTEM_PROCESSOR {recipe.build.system_processor})"]
    for var, flags in (("CMAKE_C_FLAGS", recipe.build.cflags), ("CMAKE_CXX_FLAGS", recipe.build.cxxflags)):
        if not flags:
            continue
        # A toolchain file that already wrote the flags cache (OE does, from $CFLAGS)
        # gets them appended there; otherwise they join <LANG>_FLAGS_INIT, so CMake's
        # own initialisation keeps the toolchain's flags and adds these.
        lines += [f"if(DEFINED CACHE{{{var}}})",
                  f'  set(_elkbuild_flags "${{{var}}}")',
                  "else()",
                  f'  set(_elkbuild_flags "${{{var}_INIT}}")',
                  "endif()"]
        for flag in flags:
            lines += [f'string(FIND " ${{_elkbuild_flags}} " " {flag} " _elkbuild_at)',
                      "if(_elkbuild_at EQUAL -1)",
                      f'  string(APPEND _elkbuild_flags " {flag}")',
                      "endif()"]
        lines += [f"if(DEFINED CACHE{{{var}}})",
                  f'  set({var} "${{_elkbuild_flags}}" CACHE STRING "" FORCE)',
                  "else()",
                  f'  set({var}_INIT "${{_elkbuild_flags}}")',
                  "endif()"]
    return "\n".join(lines) + "\n"


def configure_argv(recipe: Recipe, toolchain_args: Sequence[str], source: Path, build: Path,
                   install: Path, fetch_dirs: Mapping[str, Path], wrapper: Path | None,
                   placeholders: Mapping[str, str] | None = None) -> list[str]:
    """`cmake -S ... -B ...` for this recipe with this toolchain's arguments."""
    src = source / recipe.build.source_subdir if recipe.build.source_subdir else source
    args = [a for a in toolchain_args if not (wrapper and a.startswith("-DCMAKE_TOOLCHAIN_FILE="))]
    argv = ["cmake", "-S", str(src), "-B", str(build), *args]
    if wrapper:
        argv.append(f"-DCMAKE_TOOLCHAIN_FILE={wrapper}")
    argv += ["-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_INSTALL_PREFIX={install}"]
    if fetch_dirs:
        # Never download at configure time: every fetched dependency comes from the cache.
        argv.append("-DFETCHCONTENT_FULLY_DISCONNECTED=ON")
        argv += [f"-D{cmake_variable(name)}={path}" for name, path in sorted(fetch_dirs.items())]
    # Option values may name the unpacked trees: {overlay} (build-time packages), {source}.
    values = dict(placeholders or {})
    argv += [f"-D{key}={_fill(value, values)}" for key, value in recipe.build.options]
    return argv


def _fill(value: str, values: Mapping[str, str]) -> str:
    for name, path in values.items():
        value = value.replace("{" + name + "}", path)
    return value


def build_argv(recipe: Recipe, build: Path, jobs: int) -> list[str]:
    argv = ["cmake", "--build", str(build), "--parallel", str(jobs)]
    for target in recipe.build.targets:
        argv += ["--target", target]
    return argv


def needs_wrapper(recipe: Recipe) -> bool:
    return bool(recipe.build.system_processor or recipe.build.cflags or recipe.build.cxxflags)


def cmake_toolchain_args(toolchain: Any, prefix_path: Sequence[Path], use_ccache: bool,
                         write: bool = True) -> list[str]:
    """The toolchain's CMake arguments; `write` False names its toolchain file without
    writing it (a dry run)."""
    if not write:
        return list(toolchain.cmake_args(prefix_path, ccache=use_ccache, write=False))
    try:
        return list(toolchain.cmake_args(prefix_path, ccache=use_ccache))
    except TypeError:  # a toolchain without a ccache switch
        return list(toolchain.cmake_args(prefix_path))


def plan(recipe: Recipe, toolchain: Any, work: Path, source: Path, fetch_dirs: Mapping[str, Path],
         jobs: int, use_ccache: bool = True, prefix_path: Sequence[Path] = (),
         placeholders: Mapping[str, str] | None = None, write: bool = True) -> dict[str, Any]:
    """Every command and file of the CMake build, computed without running anything
    (with `write` False, not even the toolchain file is written)."""
    build, install = work / "build", work / "install"
    toolchain_args = cmake_toolchain_args(toolchain, prefix_path, use_ccache, write)
    wrapper = build / WRAPPER_NAME if needs_wrapper(recipe) else None
    commands = [configure_argv(recipe, toolchain_args, source, build, install, fetch_dirs, wrapper,
                               placeholders),
                build_argv(recipe, build, jobs)]
    if recipe.build.cmake_install:
        commands.append(["cmake", "--install", str(build)])
    return {"build": build, "install": install, "wrapper": wrapper,
            "wrapper_text": wrapper_text(recipe, toolchain_file_of(toolchain_args)) if wrapper else None,
            "commands": commands}


def run_cmake(executor: Executor, steps: dict[str, Any], on_line: LineSink | None, log_file: Path) -> None:
    steps["build"].mkdir(parents=True, exist_ok=True)
    if steps["wrapper"]:
        steps["wrapper"].write_text(steps["wrapper_text"])
    with open(log_file, "a") as log:
        def sink(line: str) -> None:
            log.write(line + "\n")
            if on_line:
                on_line(line)
        for argv in steps["commands"]:
            log.write(f"$ {shlex.join(argv)}\n")
            log.flush()
            executor.run(argv, on_line=sink, hint=f"the full output is in {log_file}")
