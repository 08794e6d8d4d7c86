"""Bundle assembly: a built JUCE VST3 folder -> a self-contained bundle for one board.

The bundle is what Sushi loads: <Name>.vst3/Contents/aarch64-linux/<Name>.so with
every library the board's system lacks copied next to it (found by walking
DT_NEEDED, never from a hand-kept list) and the model in Contents/Resources/.
Whether the result can run on the board is the ABI gate's job (abi_gate.py).
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from elkbuild.build.profiles import BoardProfile
from elkbuild.deps.staging import Stage
from elkbuild.errors import BuildError, ToolMissing
from elkbuild.executor import Executor

log = logging.getLogger("elkbuild.bundle")

ORIGIN = "$ORIGIN"
# Older JUCE (6) names the folder after `uname -m` spelled the Debian way; Sushi
# (the VST3 SDK's module loader) only looks in Contents/aarch64-linux.
LEGACY_ARCH_DIRS = {"aarch64": "arm64-linux"}
RUNPATH_FIX = ("link it with -Wl,-rpath,'$ORIGIN' -Wl,--enable-new-dtags "
               "(CMake: BUILD_WITH_INSTALL_RPATH ON, INSTALL_RPATH $ORIGIN)")


# ---- ELF walk ------------------------------------------------------------------

@dataclass(frozen=True)
class ElfDynamic:
    """The dynamic-linking facts of one ELF file."""

    path: Path
    machine: str  # e_machine, e.g. "EM_AARCH64"
    soname: str | None
    needed: tuple[str, ...]  # DT_NEEDED, in load order
    runpath: tuple[str, ...]  # DT_RUNPATH entries, unexpanded
    rpath: tuple[str, ...]  # DT_RPATH entries (obsolete; ignored when RUNPATH is set)

    def expand(self, entries: Sequence[str]) -> list[Path]:
        """Entries with $ORIGIN replaced by this file's folder; others kept only when absolute."""
        origin = str(self.path.parent)
        dirs = []
        for entry in entries:
            entry = entry.replace("${ORIGIN}", origin).replace(ORIGIN, origin)
            if os.path.isabs(entry) and "$" not in entry:
                dirs.append(Path(os.path.normpath(entry)))
        return dirs


def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"\x7fELF"
    except OSError:
        return False


def read_dynamic(path: Path) -> ElfDynamic | None:
    """DT_NEEDED, DT_SONAME, DT_RUNPATH and DT_RPATH of an ELF file; None when not ELF."""
    if not is_elf(path):
        return None
    needed: list[str] = []
    runpath: list[str] = []
    rpath: list[str] = []
    soname = None
    try:
        with open(path, "rb") as handle:
            elf = ELFFile(handle)
            machine = elf.header["e_machine"]
            for section in elf.iter_sections():
                if not isinstance(section, DynamicSection):
                    continue
                for tag in section.iter_tags():
                    kind = tag.entry.d_tag
                    if kind == "DT_NEEDED":
                        needed.append(tag.needed)
                    elif kind == "DT_SONAME":
                        soname = tag.soname
                    elif kind == "DT_RUNPATH":
                        runpath += [p for p in tag.runpath.split(":") if p]
                    elif kind == "DT_RPATH":
                        rpath += [p for p in tag.rpath.split(":") if p]
    except (ELFError, OSError) as error:
        raise BuildError(f"{path}: not a readable ELF file ({error})",
                         "rebuild it; the file is truncated or corrupt") from None
    return ElfDynamic(path=path, machine=machine, soname=soname, needed=tuple(needed),
                      runpath=tuple(runpath), rpath=tuple(rpath))


def iter_files(bundle: Path) -> Iterator[Path]:
    """Every file of a bundle, sorted, links included (not followed into folders)."""
    for root, dirs, files in os.walk(bundle):
        dirs.sort()
        for name in sorted(files):
            yield Path(root, name)


def plugin_binary(bundle: Path, arch_dir: str) -> Path:
    """Where Sushi looks for the code: <Name>.vst3/Contents/<arch>-linux/<Name>.so."""
    return bundle / "Contents" / arch_dir / f"{bundle_name(bundle)}.so"


def bundle_name(bundle: Path) -> str:
    return bundle.name[:-len(".vst3")] if bundle.name.endswith(".vst3") else bundle.name


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
                dynamic = read_dynamic(candidate)
                if dynamic is not None and dynamic.soname == soname:
                    return candidate.resolve()
    return None


# ---- assembly ------------------------------------------------------------------

@dataclass(frozen=True)
class Bundle:
    path: Path  # out_dir/<Name>.vst3
    binary: Path  # path/Contents/<arch>-linux/<Name>.so
    libraries: tuple[Path, ...]  # copied next to the binary by assemble_bundle, by SONAME
    model: Path | None  # path/Contents/Resources/<model file>, when one was given
    unresolved: tuple[str, ...] = ()  # needed SONAMEs in neither the profile's system nor library_dirs
    notes: tuple[str, ...] = ()  # what assembly could not fix (a wrong RUNPATH without patchelf)


def assemble_bundle(built: Path, out_dir: Path, *, library_dirs: list[Path], model: Path | None,
                    profile: BoardProfile, executor: Executor | None = None) -> Bundle:
    """Copy the built <Name>.vst3 to out_dir and make it self-contained for `profile`.

    The copy is made in a hidden sibling folder and renamed into place at the end,
    so a failure leaves the previous bundle (or none). With an `executor`, a plugin
    RUNPATH other than $ORIGIN is fixed with patchelf when that is installed;
    otherwise it is only reported in `Bundle.notes`.
    """
    built = Path(built)
    if not built.is_dir() or not built.name.endswith(".vst3"):
        raise BuildError(f"{built}: not a built VST3 bundle (a <Name>.vst3 folder)",
                         "build the plugin first; JUCE writes <Name>_artefacts/<config>/VST3/<Name>.vst3")
    if model is not None and not Path(model).is_file():
        raise BuildError(f"model {model}: no such file", "give the model file the plugin loads")
    final = Path(out_dir) / built.name
    if final.resolve() == built.resolve():
        raise BuildError(f"{built}: the bundle would be assembled over its own build output",
                         "give another output folder")
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = Stage(final)
    try:
        result = _assemble(built, stage.path, library_dirs, model, profile, executor)
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
              profile: BoardProfile, executor: Executor | None) -> Bundle:
    try:
        # Links are followed: the board gets real files, never a link to the build tree.
        shutil.copytree(built, stage, symlinks=False, dirs_exist_ok=True)
    except (shutil.Error, OSError) as error:
        raise BuildError(f"{built}: cannot copy the bundle ({error})",
                         "a link in the bundle points at nothing; rebuild the plugin") from None
    contents = stage / "Contents"
    arch_dir = contents / profile.bundle_arch_dir
    legacy = LEGACY_ARCH_DIRS.get(profile.arch)
    if legacy and (contents / legacy).is_dir():
        if arch_dir.exists():
            raise BuildError(f"{built}: has both Contents/{legacy} and Contents/{profile.bundle_arch_dir}",
                             "delete the stale one and rebuild")
        # JUCE 6 writes Contents/arm64-linux; Sushi only loads Contents/aarch64-linux.
        (contents / legacy).rename(arch_dir)
    binary = arch_dir / f"{bundle_name(built)}.so"  # named after the bundle, not the staged copy
    if not binary.is_file():
        found = sorted(p.name for p in contents.glob("*-linux")) if contents.is_dir() else []
        raise BuildError(f"{built}: no Contents/{profile.bundle_arch_dir}/{binary.name}"
                         + (f" (it has Contents/{', Contents/'.join(found)})" if found else ""),
                         f"build the plugin with a toolchain for {profile.arch}, not the native one")
    copied, unresolved = _copy_needed(binary, library_dirs, profile)
    notes = _fix_runpaths(binary, copied, profile, executor, stage)
    placed_model = None
    if model is not None:
        resources = contents / "Resources"
        resources.mkdir(parents=True, exist_ok=True)
        placed_model = resources / Path(model).name
        shutil.copy2(model, placed_model)
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
        dynamic = read_dynamic(queue.pop(0))
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
    wrong: list[tuple[Path, ElfDynamic]] = []
    plugin = read_dynamic(binary)
    if plugin is not None and plugin.runpath != (ORIGIN,):
        wrong.append((binary, plugin))
    bundled = {p.name for p in binary.parent.iterdir()}
    for library in copied:
        dynamic = read_dynamic(library)
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
