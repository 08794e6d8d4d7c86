"""The ABI gate: can this bundle run on that board? Checked before anything is deployed.

Rules, each problem one line naming the file (relative to the bundle) and the
symbol, version or library at fault:
- the code is in the <arch>-linux code folder (aarch64-linux for the Pi: Sushi's folder);
- every ELF file is for the board's machine;
- no GLIBC_/GLIBCXX_ version needed is newer than the board's libc/libstdc++;
- every DT_NEEDED resolves the way the board's loader would resolve it: inside
  the bundle through RUNPATH $ORIGIN, or among the board's system libraries;
- the plugin exports the VST3 entry points the VST3 SDK's loader (Sushi's) looks up.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from elkbuild.build.profiles import BoardProfile
from elkbuild.build.toolchains import TOOLCHAINS
from elkbuild.bundle.assemble import RUNPATH_FIX
from elkbuild.bundle.layout import BundleLayout, arch_dir
from elkbuild.elf import MACHINES, ElfInfo, exported_functions, read_elf, symbols_bound_to, versions_of, version_key
from elkbuild.errors import BuildError, ValidationFailed

# The VST3 SDK's Linux module loader (used by Sushi) refuses a module lacking any of these.
VST3_EXPORTS = ("GetPluginFactory", "ModuleEntry", "ModuleExit")

# Why a library is missing on a headless Elk image, and what to do instead.
_HEADLESS_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("libX", "libxcb", "libGL", "libEGL", "libgtk", "libgdk", "libwebkit", "libcairo", "libpango"),
     "a headless Elk image has no X11/GUI libraries: build the plugin without an editor "
     "and with JUCE_WEB_BROWSER=0, so nothing links them"),
    (("libcurl",), "a headless Elk image has no libcurl: build with JUCE_USE_CURL=0"),
    (("libpng", "libjpeg", "libfreetype", "libfontconfig", "libz."),
     "Debian's JUCE links the system libpng, libjpeg and freetype (with zlib) into every target "
     "and an Elk image is not known to have them: stage it as a dependency so the bundle step "
     "copies it next to the plugin"),
    (("libmvec",), "glibc's vector maths library exists for aarch64 only from glibc 2.38: build "
                   "against the board's glibc (its headers then declare no vector variants)"),
)
_DEFAULT_MISSING_HINT = ("stage the library that provides it and pass its lib/ folder to the "
                         "bundle step, so it is copied next to the plugin")


@dataclass(frozen=True)
class AbiProblem:
    file: str  # relative to the bundle (BundleLayout.relative)
    rule: str  # folder | link | arch | glibc | glibcxx | needed | exports | model
    message: str  # what is wrong and the fix, one line

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


class NotDeployable(ValidationFailed, BuildError):
    """A bundle broke the ABI gate; `problems` holds one line per problem."""

    def __init__(self, bundle: Path, profile: BoardProfile, problems: Iterable[AbiProblem]) -> None:
        self.abi_problems = list(problems)
        super().__init__(f"{bundle} cannot run on the {profile.name} board",
                         [str(p) for p in self.abi_problems],
                         "fix each problem listed, then run the bundle step again")


def require_deployable(bundle: Path, profile: BoardProfile) -> None:
    """Raise NotDeployable listing every problem when `bundle` fails the gate."""
    problems = check_bundle(bundle, profile)
    if problems:
        raise NotDeployable(Path(bundle), profile, problems)


def check_bundle(bundle: Path, profile: BoardProfile) -> list[AbiProblem]:
    """Every reason `bundle` (<Name>.vst3) would not load under Sushi on `profile`'s board."""
    layout = BundleLayout(Path(bundle).absolute())  # $ORIGIN expands to absolute folders
    bundle = layout.path
    if not bundle.is_dir():
        return [AbiProblem(bundle.name, "folder", "no such bundle folder; run the bundle step first")]
    problems: list[AbiProblem] = []
    binary = _plugin_binary(layout, profile, problems)
    elves: list[ElfInfo] = []
    for path in layout.files():
        rel = layout.relative(path)
        if path.is_symlink():
            target = Path(os.path.realpath(path))
            if not target.is_file() or bundle.resolve() not in target.parents:
                problems.append(AbiProblem(rel, "link", "is a link to outside the bundle (or to nothing); "
                                           "a bundle must hold real files"))
            continue
        try:
            info = read_elf(path)
        except BuildError:
            problems.append(AbiProblem(rel, "arch", "starts like an ELF file but cannot be read: "
                                       "rebuild it or remove it from the bundle"))
            continue
        if info is None:
            continue
        if info.machine != profile.elf_machine:
            problems.append(AbiProblem(rel, "arch", f"is an ELF for {_machine_name(info.machine)} "
                                       f"({info.machine}); the {profile.name} board runs {profile.arch} "
                                       f"({profile.elf_machine}): rebuild it with an {profile.arch} toolchain"))
            continue
        elves.append(info)
        problems += _version_problems(layout, info, profile)
    problems += _needed_problems(layout, binary, elves, profile)
    if binary is not None:
        problems += _export_problems(layout, binary, elves)
    problems += _model_problems(layout)
    return problems


def _model_problems(layout: BundleLayout) -> list[AbiProblem]:
    """An effect's bundle carries its model's roles (<model>.roles). A model the plugin
    cannot load makes it refuse to activate, and Sushi runs on without a word (it
    ignores setActive's answer): roles without their model, or an ONNX model that
    cannot be read or misses its external data file, are refused here instead."""
    from elkbuild.errors import ToolMissing
    from elkbuild.plugin.models import ModelError, read_model

    resources = layout.resources
    problems = []
    for roles in sorted(resources.glob("*.roles")) if resources.is_dir() else ():
        model = roles.with_name(roles.name[:-len(".roles")])
        if not model.is_file():
            problems.append(AbiProblem(layout.relative(roles), "model",
                                       f"describes {model.name}, which is not in the bundle, so the plugin "
                                       "would refuse to activate; rebuild the bundle (`invoke build`)"))
            continue
        try:
            read_model(model)   # names an external data file that is not beside it
        except ToolMissing:
            continue
        except ModelError as error:
            problems.append(AbiProblem(layout.relative(model), "model",
                                       f"{error.message[len(error.path) + 2:]}; the plugin would refuse "
                                       "to activate; rebuild the bundle (`invoke build`)"))
    return problems


def _machine_name(machine: str) -> str:
    names = {em: arch for arch, em in reversed(list(MACHINES.items()))}
    return names.get(machine, machine)


def _plugin_binary(layout: BundleLayout, profile: BoardProfile,
                   problems: list[AbiProblem]) -> Path | None:
    """The plugin binary in the right code folder, else in a legacy one (reported), so a
    misnamed bundle still gets every other check."""
    wanted = arch_dir(profile.arch)
    legacy = layout.legacy_code_dir(profile.arch)
    chosen = None
    if legacy is not None:
        problems.append(AbiProblem(layout.relative(legacy), "folder",
                                   f"Sushi needs {layout.relative(layout.code_dir(wanted))}, not "
                                   f"{legacy.name} (older JUCE's name): rename it, as the bundle step does"))
        chosen = legacy.name
    if layout.code_dir(wanted).is_dir():
        chosen = wanted
    if chosen is None:
        problems.append(AbiProblem(layout.relative(layout.code_dir(wanted)), "folder",
                                   f"is missing{layout.describe_code_folders()}: the bundle has no code "
                                   f"for {profile.arch}; build the plugin with an {profile.arch} toolchain"))
        return None
    binary = layout.binary_in(chosen)
    if not binary.is_file():
        problems.append(AbiProblem(layout.relative(binary), "folder",
                                   "is missing: Sushi loads the plugin code from there, "
                                   "named after the bundle"))
        return None
    return binary


# ---- glibc and libstdc++ versions ----------------------------------------------

def _version_problems(layout: BundleLayout, info: ElfInfo, profile: BoardProfile) -> list[AbiProblem]:
    problems = []
    for prefix, rule, has, library in (("GLIBC", "glibc", profile.abi.glibc, "glibc"),
                                       ("GLIBCXX", "glibcxx", profile.abi.glibcxx, "libstdc++")):
        needed = info.highest_needed(prefix)
        if needed is None or version_key(needed) <= version_key(has):
            continue
        too_new = [v for v in versions_of(info.needed_versions, prefix) if version_key(v) > version_key(has)]
        symbols = symbols_bound_to(info.path, [f"{prefix}_{v}" for v in too_new])
        example = f" (e.g. {', '.join(symbols)})" if symbols else ""
        fitting = _fitting_toolchains(profile)
        fix = (f"rebuild it with {' or '.join(fitting)}" if fitting
               else f"rebuild it against {library} {has} or older")
        problems.append(AbiProblem(layout.relative(info.path), rule,
                                   f"needs {prefix}_{needed}{example}; the {profile.name} board has "
                                   f"{library} {has}{' (inferred)' if profile.abi_inferred else ''}: {fix}"))
    return problems


def _fitting_toolchains(profile: BoardProfile) -> list[str]:
    """Toolchains for the board's arch whose sysroot is no newer than the board."""
    board = (version_key(profile.abi.glibc), version_key(profile.abi.glibcxx))
    fits = [t for t in TOOLCHAINS.values() if t.arch == profile.arch
            and version_key(t.abi.glibc) <= board[0] and version_key(t.abi.glibcxx) <= board[1]]
    # Closest to the board first: it offers the most of what the board has.
    fits.sort(key=lambda t: (version_key(t.abi.glibc), version_key(t.abi.glibcxx), t.name), reverse=True)
    return [t.name for t in fits]


# ---- DT_NEEDED resolution -------------------------------------------------------

def _needed_problems(layout: BundleLayout, binary: Path | None, elves: list[ElfInfo],
                     profile: BoardProfile) -> list[AbiProblem]:
    by_path = {e.path.resolve(): e for e in elves}
    by_name: dict[str, Path] = {}
    for elf in elves:
        by_name.setdefault(elf.path.name, elf.path)
    problems: list[AbiProblem] = []
    reached: set[Path] = set()
    roots = [binary.resolve()] if binary is not None and binary.resolve() in by_path else []
    roots += [p for p in by_path if p not in roots]
    for root in roots:
        if root not in reached:
            problems += _load_like_the_board(layout, root, by_path, by_name, profile, reached)
    unique: list[AbiProblem] = []
    for problem in problems:
        if problem not in unique:
            unique.append(problem)
    return unique


def _load_like_the_board(layout: BundleLayout, root: Path, by_path: dict[Path, ElfInfo],
                         by_name: dict[str, Path], profile: BoardProfile,
                         reached: set[Path]) -> list[AbiProblem]:
    """Follow glibc's loader breadth first from `root`: a SONAME loaded once serves every
    later request; DT_RUNPATH serves only its own object's needs, while DT_RPATH
    (when there is no RUNPATH) is inherited by what that object loads."""
    bundle_real = layout.path.resolve()
    first = by_path[root]
    loaded = {root.name, *([first.soname] if first.soname else [])}
    queue: deque[tuple[ElfInfo, list[Path]]] = deque([(first, [])])
    reached.add(root)
    problems = []
    while queue:
        elf, inherited = queue.popleft()
        own_rpath = elf.expand(elf.rpath) if not elf.runpath else []
        dirs = elf.expand(elf.runpath) if elf.runpath else own_rpath + inherited
        dirs = [Path(os.path.realpath(d)) for d in dirs]
        rel = layout.relative(elf.path)
        for soname in elf.needed:
            if soname in loaded:
                continue
            hit = next((d / soname for d in dirs if (d == bundle_real or bundle_real in d.parents)
                        and (d / soname).is_file()), None)
            if hit is not None and hit.resolve() in by_path:
                loaded.add(soname)
                child = hit.resolve()
                if child not in reached:
                    reached.add(child)
                    queue.append((by_path[child], own_rpath + inherited))
            elif hit is not None or soname in profile.system_libraries:
                loaded.add(soname)  # a system library (or a wrong-arch file, reported already)
            elif soname in by_name:
                where = layout.relative(by_name[soname])
                paths = ":".join(elf.runpath or elf.rpath) or "not set"
                problems.append(AbiProblem(rel, "needed",
                                           f"needs {soname}, which is in the bundle ({where}) but its "
                                           f"RUNPATH ({paths}) does not reach it: {RUNPATH_FIX}"))
            else:
                problems.append(AbiProblem(rel, "needed",
                                           f"needs {soname}, which is neither in the bundle nor a system "
                                           f"library of the {profile.name} board: {_missing_hint(soname)}"))
    return problems


def _missing_hint(soname: str) -> str:
    for prefixes, hint in _HEADLESS_HINTS:
        if soname.startswith(prefixes):
            return hint
    return _DEFAULT_MISSING_HINT


# ---- VST3 entry points ----------------------------------------------------------

def _export_problems(layout: BundleLayout, binary: Path, elves: list[ElfInfo]) -> list[AbiProblem]:
    if binary.resolve() not in {e.path.resolve() for e in elves}:
        return []  # not an ELF for the board: reported by the arch rule
    exported = exported_functions(binary)
    return [AbiProblem(layout.relative(binary), "exports",
                       f"does not export the function {name}, so Sushi cannot load it as a VST3 "
                       f"plugin: build the JUCE <Name>_VST3 target and keep its entry points visible")
            for name in VST3_EXPORTS if name not in exported]
