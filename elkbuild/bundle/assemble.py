"""Bundle assembly: a built JUCE VST3 folder -> a self-contained bundle for one board.

The bundle is what Sushi loads (bundle/layout.py): the plugin binary with every
library the board's system lacks copied next to it (found by walking DT_NEEDED,
never from a hand-kept list) and the model, with its external data files
(MODEL.onnx.data), in the bundle's resources.
Whether the result can run on the board is the ABI gate's job (abi_gate.py).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from elkbuild.build.profiles import BoardProfile
from elkbuild.bundle.layout import BundleLayout, arch_dir
from elkbuild.deps.staging import Stage
from elkbuild.elf import ORIGIN, ElfInfo, read_elf
from elkbuild.errors import BuildError, ToolMissing
from elkbuild.executor import Executor

log = logging.getLogger("elkbuild.bundle")

RUNPATH_FIX = ("link it with -Wl,-rpath,'$ORIGIN' -Wl,--enable-new-dtags "
               "(CMake: BUILD_WITH_INSTALL_RPATH ON, INSTALL_RPATH $ORIGIN)")


def find_library(library_dirs: Sequence[Path], soname: str) -> Path | None:
    """The real file providing `soname` in the first folder that has it.

    By file name first (the usual libx.so.1 -> libx.so.1.2.3 link), else by the
    DT_SONAME of the ELF files there (prefixes holding only libx.so.1.2.3).
    """
    for folder in library_dirs:
        candidate = Path(folder) / soname
        if candidate.is_file():
            return candidate.resolve()
    for folder in library_dirs:
        if not Path(folder).is_dir():
            continue
        for candidate in sorted(Path(folder).iterdir()):
            if ".so" in candidate.name and candidate.is_file():
                info = read_elf(candidate)
                if info is not None and info.soname == soname:
                    return candidate.resolve()
    return None


# ---- assembly ------------------------------------------------------------------

@dataclass(frozen=True)
class Bundle:
    path: Path  # out_dir/<Name>.vst3
    binary: Path  # the plugin binary for the board's arch (BundleLayout.binary)
    libraries: tuple[Path, ...]  # copied next to the binary by assemble_bundle, by SONAME
    model: Path | None  # the model in the bundle's resources, when one was given
    unresolved: tuple[str, ...] = ()  # needed SONAMEs in neither the profile's system nor library_dirs
    notes: tuple[str, ...] = ()  # what assembly could not fix (a wrong RUNPATH without patchelf)


def assemble_bundle(built: Path, out_dir: Path, *, library_dirs: list[Path], model: Path | None,
                    profile: BoardProfile, executor: Executor | None = None,
                    model_data: Sequence[Path] = ()) -> Bundle:
    """Copy the built <Name>.vst3 to out_dir and make it self-contained for `profile`.

    The copy is made in a hidden sibling folder and renamed into place at the end,
    so a failure leaves the previous bundle (or none). With an `executor`, a plugin
    RUNPATH other than $ORIGIN is fixed with patchelf when that is installed;
    otherwise it is only reported in `Bundle.notes`.
    """
    built = Path(built)
    if not built.is_dir() or not BundleLayout(built).has_suffix:
        raise BuildError(f"{built}: not a built VST3 bundle (a <Name>.vst3 folder)",
                         "build the plugin first; JUCE writes <Name>_artefacts/<config>/VST3/<Name>.vst3")
    if model is not None and not Path(model).is_file():
        raise BuildError(f"model {model}: no such file", "give the model file the plugin loads")
    for data in model_data:
        if not Path(data).is_file():
            raise BuildError(f"model data {data}: no such file",
                             f"the model {Path(model).name if model else ''} cannot load without it; "
                             "copy it beside the model")
    final = Path(out_dir) / built.name
    if final.resolve() == built.resolve():
        raise BuildError(f"{built}: the bundle would be assembled over its own build output",
                         "give another output folder")
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = Stage(final)
    try:
        result = _assemble(built, stage.path, library_dirs, model, tuple(model_data), profile, executor)
        stage.commit(None)
    except BaseException:
        stage.discard()
        raise

    def moved(path: Path) -> Path:  # where a path of the staged copy is now
        return final / path.relative_to(stage.path)

    return Bundle(path=final, binary=moved(result.binary),
                  libraries=tuple(moved(p) for p in result.libraries),
                  model=moved(result.model) if result.model else None,
                  unresolved=result.unresolved, notes=result.notes)


def _assemble(built: Path, stage: Path, library_dirs: Sequence[Path], model: Path | None,
              model_data: tuple[Path, ...], profile: BoardProfile, executor: Executor | None) -> Bundle:
    try:
        # Links are followed: the board gets real files, never a link to the build tree.
        shutil.copytree(built, stage, symlinks=False, dirs_exist_ok=True)
    except (shutil.Error, OSError) as error:
        raise BuildError(f"{built}: cannot copy the bundle ({error})",
                         "a link in the bundle points at nothing; rebuild the plugin") from None
    layout = BundleLayout(stage, plugin=BundleLayout(built).name)
    wanted = arch_dir(profile.arch)
    arch_folder = layout.code_dir(wanted)
    legacy = layout.legacy_code_dir(profile.arch)
    if legacy is not None:
        if arch_folder.exists():
            raise BuildError(f"{built}: has both {layout.relative(legacy)} and {layout.relative(arch_folder)}",
                             "delete the stale one and rebuild")
        legacy.rename(arch_folder)
    binary = layout.binary_in(wanted)
    if not binary.is_file():
        raise BuildError(f"{built}: no {layout.relative(binary)}"
                         + layout.describe_code_folders(),
                         f"build the plugin with a toolchain for {profile.arch}, not the native one")
    copied, unresolved = _copy_needed(binary, library_dirs, profile)
    notes = _fix_runpaths(binary, copied, profile, executor, stage)
    placed_model = None
    if model is not None:
        resources = layout.resources
        resources.mkdir(parents=True, exist_ok=True)
        placed_model = resources / Path(model).name
        shutil.copy2(model, placed_model)
        # ONNX Runtime resolves external data relative to the model it loads.
        for data in model_data:
            shutil.copy2(data, resources / Path(data).name)
    for soname in unresolved:
        log.debug("%s needs %s, found neither in the %s system nor in the staged libraries",
                  binary.name, soname, profile.name)
    return Bundle(path=stage, binary=binary, libraries=tuple(copied), model=placed_model,
                  unresolved=tuple(unresolved), notes=tuple(notes))


def _copy_needed(binary: Path, library_dirs: Sequence[Path],
                 profile: BoardProfile) -> tuple[list[Path], list[str]]:
    """Walk DT_NEEDED from the plugin; copy each non-system library found in library_dirs."""
    folder = binary.parent
    copied: list[Path] = []
    unresolved: list[str] = []
    seen: set[str] = set()
    queue = [binary]
    while queue:
        dynamic = read_elf(queue.pop(0))
        for soname in dynamic.needed if dynamic else ():
            if soname in seen or soname in profile.system_libraries:
                continue
            seen.add(soname)
            target = folder / soname
            if target.is_file():  # the build already put it there (the ONNX Runtime library)
                queue.append(target)
                continue
            source = find_library(library_dirs, soname)
            if source is None:
                unresolved.append(soname)
                continue
            # Stored under its SONAME: that is the name the loader asks for.
            shutil.copy2(source, target)
            copied.append(target)
            queue.append(target)
    return copied, unresolved


def _fix_runpaths(binary: Path, copied: Sequence[Path], profile: BoardProfile,
                  executor: Executor | None, stage: Path) -> list[str]:
    """RUNPATH $ORIGIN on the plugin (and on copied libraries needing bundled ones)."""
    wrong: list[tuple[Path, ElfInfo]] = []
    plugin = read_elf(binary)
    if plugin is not None and plugin.runpath != (ORIGIN,):
        wrong.append((binary, plugin))
    bundled = {p.name for p in binary.parent.iterdir()}
    for library in copied:
        dynamic = read_elf(library)
        needs_bundled = dynamic is not None and any(
            n in bundled and n not in profile.system_libraries for n in dynamic.needed)
        if needs_bundled and ORIGIN not in (dynamic.runpath or dynamic.rpath):
            wrong.append((library, dynamic))
    notes = []
    for path, dynamic in wrong:
        rel = path.relative_to(stage).as_posix()
        shown = ":".join(dynamic.runpath) or (f"RPATH {':'.join(dynamic.rpath)}" if dynamic.rpath else "not set")
        if executor is not None and _patchelf(executor, path):
            log.debug("%s: RUNPATH was %s; set to $ORIGIN with patchelf", rel, shown)
            continue
        notes.append(f"{rel}: RUNPATH is {shown}, not $ORIGIN, so libraries next to it may not be "
                     f"found on the board; {RUNPATH_FIX}, or install patchelf to let the bundle step fix it")
        log.warning(notes[-1])
    return notes


def _patchelf(executor: Executor, path: Path) -> bool:
    """Set RUNPATH to $ORIGIN; False when patchelf is not installed."""
    try:
        # patchelf writes DT_RUNPATH (it converts an old DT_RPATH) unless --force-rpath.
        executor.run(["patchelf", "--set-rpath", ORIGIN, str(path)],
                     hint="patchelf could not rewrite the file; fix the link flags instead")
    except ToolMissing:
        return False
    return True
