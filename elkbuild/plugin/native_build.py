"""build-native: a plugin project compiled for this machine (x86_64), for tests and rt-check.

The host compiler and JUCE's CMake package build the project through the same
CMake command line as the cross build (build/cmake.py). An onnx project links
the ONNX Runtime of the PyPI wheel; a tflite project links Debian sid's
libtensorflow-lite in a tree made once with mmdebstrap (build/tflite_runtime.py),
because no x86_64 build of LiteRT exports the TfLite C API, and its plugin runs
inside that tree (native_executor). With ccache installed (scripts/apt-packages.txt)
a second plugin reuses the first one's JUCE module objects (build/cmake.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from elkbuild.build import cmake
from elkbuild.build.engines import Engine, onnxruntime_engine
from elkbuild.build.tflite_runtime import TREE_LIBRARY, TreeExecutor, ensure_runtime, tflite_engine
from elkbuild.elf import read_elf
from elkbuild.vst3host.build import native_arch
from elkbuild.vst3host.run import plugin_binary
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
                 engine: Engine | None = None,
                 progress: Callable[[str], None] | None = None) -> NativeBuild:
    """Configure and build the plugin for this machine with the host compiler and
    JUCE's CMake package, linking `engine` or else the project's native engine
    (native_engine: made once if missing, its progress through `progress`, else
    `on_line`, which gets CMake's output)."""
    project = load_project(project_dir)
    if engine is None:
        engine = native_engine(project.engine, executor, cache_dir, progress or on_line)
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
                                      resample=project.resample,
                                      juce_dir=juce_dir, generator=_generator(),
                                      ccache=installed("ccache")),
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


def native_engine(engine: str, executor: Executor, cache_dir: Path,
                  progress: Callable[[str], None] | None = None) -> Engine:
    """The engine library a native build of an `engine` project links: the PyPI
    wheel's ONNX Runtime, or sid's TensorFlow Lite (its tree made if missing)."""
    if engine == "onnx":
        return onnxruntime_engine(executor, cache_dir)
    return tflite_engine(ensure_runtime(executor, cache_dir, progress))


def native_executor(bundle: Path, executor: Executor, cache_dir: Path, host_dir: Path,
                    progress: Callable[[str], None] | None = None) -> Executor:
    """What runs elkbuild's VST3 host (built under host_dir) on a natively built
    bundle: `executor` itself, or, for a bundle that links sid's TensorFlow Lite,
    a TreeExecutor that runs the host inside the sid tree, where the loader finds
    the library's glibc and abseil."""
    arch = native_arch()
    binary = plugin_binary(bundle, arch)
    elf = read_elf(binary)
    if elf is None or not any(name.startswith(TREE_LIBRARY) for name in elf.needed):
        return executor
    runtime = ensure_runtime(executor, cache_dir, progress)
    return TreeExecutor(runtime=runtime, host=executor,
                        folders=(Path(host_dir).resolve(), Path(bundle).resolve()))


def _generator() -> str | None:
    """Ninja when it is installed, else CMake's default (Makefiles): a choice, not a requirement."""
    return "Ninja" if installed("ninja") else None
