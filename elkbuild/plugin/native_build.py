"""build-native: a plugin project compiled for this machine (x86_64), for tests and rt-check.

The host compiler and JUCE's CMake package build the project through the same
CMake command line as the cross build (build/cmake.py); an onnx project links
the ONNX Runtime of the PyPI wheel, a tflite project the engine it is given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from elkbuild.build import cmake
from elkbuild.build.engines import Engine, onnxruntime_engine
from elkbuild.build.juce import patched_juce
from elkbuild.bundle.layout import BundleLayout
from elkbuild.errors import BuildError
from elkbuild.executor import Executor, installed, require
from elkbuild.plugin.project import PluginProject, load_project


@dataclass(frozen=True)
class NativeBuild:
    project: PluginProject
    bundle: Path          # <Name>.vst3
    binary: Path          # the plugin's shared object inside the bundle
    seconds: float


def build_native(project_dir: Path, executor: Executor, cache_dir: Path, build_root: Path,
                 *, jobs: int = 2, niceness: int | None = 10,
                 on_line: Callable[[str], None] | None = None,
                 engine: Engine | None = None) -> NativeBuild:
    """Configure and build the plugin for this machine with the host compiler and
    JUCE's CMake package. An onnx project links the ONNX Runtime library of the PyPI
    wheel unless `engine` says otherwise; a tflite project needs `engine` (this host
    has no TensorFlow Lite: elkbuild.build.tflite_runtime provides one)."""
    project = load_project(project_dir)
    if engine is None:
        if project.engine != "onnx":
            raise BuildError(f"{project.identity.source}: engine {project.engine} has no native "
                             "engine library on this machine",
                             "pass engine= (elkbuild.build.tflite_runtime.tflite_engine), or build "
                             "it for the board (cross build)")
        engine = onnxruntime_engine(executor, cache_dir)
    if engine.engine != project.engine:
        raise BuildError(f"{project.identity.source}: the project runs {project.engine} but the "
                         f"engine library given is {engine.engine} ({engine.library.name})",
                         f"pass a {project.engine} engine library")
    if not engine.library.is_file():
        raise BuildError(f"the engine library {engine.library} does not exist",
                         "make the engine's library first")
    require("cmake", "apt-get install cmake")
    name = project.identity.name
    build_dir = build_root / "native" / name
    cmake.forget_build_of_other_source(build_dir, project.root)
    prefix = ["nice", "-n", str(niceness)] if niceness is not None else []
    started = time.monotonic()
    juce_dir = patched_juce(executor, cache_dir)
    executor.run(cmake.configure_argv(project.root, build_dir, engine=engine, model=project.model,
                                      model_data=project.model_data,
                                      model_roles=cmake.write_model_roles(project, build_dir),
                                      juce_dir=juce_dir, generator=_generator()),
                 on_line=on_line,
                 hint="JUCE's CMake package comes from `apt-get install juce-modules-source juce-tools`")
    executor.run([*prefix, *cmake.build_argv(build_dir, name, jobs)], on_line=on_line)
    seconds = time.monotonic() - started
    bundle = BundleLayout(cmake.built_bundle(build_dir, name))
    binaries = bundle.binaries()
    if not binaries:
        raise BuildError(f"the build left no {name}.so in {bundle.contents}/<arch>-linux",
                         f"look at the build log in {build_dir}")
    return NativeBuild(project, bundle.path, binaries[0], seconds)


def _generator() -> str | None:
    """Ninja when it is installed, else CMake's default (Makefiles): a choice, not a requirement."""
    return "Ninja" if installed("ninja") else None
