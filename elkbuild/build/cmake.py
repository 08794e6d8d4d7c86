"""The one CMake command line of a plugin build, native or cross.

Both builds configure the rendered project the same way (JUCE's patched CMake
package, elkbuild's model runtime, the engine's headers and library, the model) and differ only in what
the toolchain adds (its toolchain file) and in linker flags an engine asks for;
the artefact JUCE writes is found here too.

ccache sits in front of the compilers (in every build image, and on the host when
installed). The rendered projects compile JUCE's modules with the same command
line for every plugin of a kind, every path in it absolute and outside the build
folder (ccache hashes neither -o nor the -MT/-MF dependency file names), so a
second plugin takes the first one's module objects from the cache, wherever its
build folder is.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

from elkbuild.build.engines import Engine
from elkbuild.plugin.project import PluginProject
from elkbuild.plugin.roles import roles_text

CONFIGS = ("Release", "Debug")
RUNTIME_DIR = Path(__file__).resolve().parents[2] / "runtime"
"""libelkrt's sources, which every plugin links from this checkout (cross builds mount
the checkout at the same path, so the one path serves both)."""


CCACHE_LAUNCHER = "env;CCACHE_SLOPPINESS=time_macros;ccache"
"""A compiler launcher (a CMake list): set in the command itself, it holds for a
`cmake --build` run by hand in the build folder too. time_macros: juce_core's
Time::getCompilationDate() expands __TIME__, which would make juce_core miss the
cache every time; nothing in JUCE's modules or the plugins calls it."""


def vst3_target(name: str) -> str:
    return f"{name}_VST3"


def configure_argv(source: Path, build_dir: Path, *, engine: Engine, model: Path, juce_dir: Path,
                   model_data: Sequence[Path] = (), model_roles: Path | None = None,
                   resample: str = "off", config: str = "Release",
                   generator: str | None = "Ninja", toolchain_args: Sequence[str] = (),
                   ccache: bool = False) -> list[str]:
    """`cmake -S source -B build_dir ...` for a rendered plugin project; `ccache`
    puts CCACHE_LAUNCHER in front of the compilers."""
    link_flags = " ".join(engine.link_flags)
    # VST3 bundles are MODULE libraries in JUCE's CMake; set both kinds.
    linking = ([f"-DCMAKE_MODULE_LINKER_FLAGS={link_flags}", f"-DCMAKE_SHARED_LINKER_FLAGS={link_flags}"]
               if link_flags else [])
    return ["cmake", "-S", str(source), "-B", str(build_dir),
            *(["-G", generator] if generator else []),
            *toolchain_args,
            *([f"-DCMAKE_C_COMPILER_LAUNCHER={CCACHE_LAUNCHER}",
               f"-DCMAKE_CXX_COMPILER_LAUNCHER={CCACHE_LAUNCHER}"] if ccache else []),
            f"-DCMAKE_BUILD_TYPE={config}",
            # JUCE's CMake package is a host package (a cross toolchain file confines
            # find_package() to the sysroot), and elkbuild's patched copy of it.
            f"-DJUCE_DIR={juce_dir}",
            f"-DELKBUILD_RUNTIME_DIR={RUNTIME_DIR}",
            f"-DELKBUILD_ENGINE={engine.engine}",
            f"-DELKBUILD_ENGINE_INCLUDE_DIRS={';'.join(str(d) for d in engine.include_dirs)}",
            f"-DELKBUILD_ENGINE_LIBRARY={engine.library}",
            *linking,
            f"-DELKBUILD_MODEL={model}",
            # The model's external data files, copied beside it into the bundle.
            f"-DELKBUILD_MODEL_DATA={';'.join(str(p) for p in model_data)}",
            # An effect's tensor roles (plugin.yaml), for Resources/<model>.roles.
            *([f"-DELKBUILD_MODEL_ROLES={model_roles}"] if model_roles else []),
            # plugin.yaml's resample: a plugin that converts rates links libsamplerate.
            f"-DELKBUILD_RESAMPLE={resample}"]


def write_model_roles(project: PluginProject, build_dir: Path, *, write: bool = True) -> Path | None:
    """plugin.yaml's model_roles as the runtime reads them, in the build folder (rewritten
    only when they changed, so an unchanged build stays a no-op); None for a classifier.
    With write=False (a dry run) only the path is given."""
    if project.roles is None:
        return None
    path = build_dir / f"{project.model.name}.roles"
    if not write:
        return path
    text = f"# {project.identity.name}: from {project.identity.source} (model_roles)" + roles_text(project.roles)
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path


def build_argv(build_dir: Path, name: str, jobs: int) -> list[str]:
    """`cmake --build` of the plugin's VST3 target."""
    return ["cmake", "--build", str(build_dir), "--target", vst3_target(name), "--parallel", str(jobs)]


def built_bundle(build_dir: Path, name: str, config: str = "Release") -> Path:
    """Where JUCE leaves the <Name>.vst3 it built."""
    return build_dir / f"{name}_artefacts" / config / "VST3" / f"{name}.vst3"


def forget_build_of_other_source(build_dir: Path, source: Path) -> bool:
    """Build folders are named after the plugin; when the one found was configured for
    a project elsewhere (moved, or another of the same name) CMake refuses it, so it
    is removed and configured afresh. True when it was removed."""
    cache = build_dir / "CMakeCache.txt"
    if not cache.is_file():
        return False
    for line in cache.read_text(errors="replace").splitlines():
        if line.startswith("CMAKE_HOME_DIRECTORY:"):
            configured = line.split("=", 1)[1]
            if Path(configured).resolve() == Path(source).resolve():
                return False
            shutil.rmtree(build_dir)
            return True
    return False
