"""The ABI gate: can this bundle run on that board? Checked before anything is deployed.

Rules, each problem one line naming the file (relative to the bundle) and the
symbol, version or library at fault:
- the code is in Contents/<arch>-linux (aarch64-linux for the Pi: Sushi's folder);
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

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection, GNUVerSymSection
from elftools.elf.sections import SymbolTableSection

from elkbuild.build.profiles import BoardProfile
from elkbuild.bundle.assemble import LEGACY_ARCH_DIRS, RUNPATH_FIX, ElfDynamic, iter_files, plugin_binary, read_dynamic
from elkbuild.deps.staging import ELF_MACHINES, elf_machine, glibc_needs
from elkbuild.errors import BuildError, ValidationFailed
from elkbuild.build.toolchains import TOOLCHAINS, _version_key

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
    file: str  # relative to the bundle, e.g. "Contents/aarch64-linux/Plugin.so"
    rule: str  # folder | link | arch | glibc | glibcxx | needed | exports
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
    bundle = Path(bundle).absolute()  # $ORIGIN expands to absolute folders
    if not bundle.is_dir():
        return [AbiProblem(bundle.name, "folder", "no such bundle folder; run the bundle step first")]
    problems: list[AbiProblem] = []
    code_dir = _code_dir(bundle, profile, problems)
    elves: list[ElfDynamic] = []
    for path in iter_files(bundle):
        rel = _rel(bundle, path)
        if path.is_symlink():
            target = Path(os.path.realpath(path))
            if not target.is_file() or bundle.resolve() not in target.parents:
                problems.append(AbiProblem(rel, "link", "is a link to outside the bundle (or to nothing); "
                                           "a bundle must hold real files"))
            continue
        try:
            dynamic = read_dynamic(path)
        except BuildError:
            problems.append(AbiProblem(rel, "arch", "starts like an ELF file but cannot be read: "
                                       "rebuild it or remove it from the bundle"))
            continue
        if dynamic is None:
            continue
        if dynamic.machine != profile.elf_machine:
            problems.append(AbiProblem(rel, "arch", f"is an ELF for {_machine_name(dynamic.machine)} "
                                       f"({dynamic.machine}); the {profile.name} board runs {profile.arch} "
                                       f"({profile.elf_machine}): rebuild it with an {profile.arch} toolchain"))
            continue
        elves.append(dynamic)
        problems += _version_problems(bundle, path, profile)
    binary = plugin_binary(bundle, code_dir) if code_dir else None
    problems += _needed_problems(bundle, binary, elves, profile)
    if binary is not None:
        problems += _export_problems(bundle, binary, profile)
    return problems


def _rel(bundle: Path, path: Path) -> str:
    return path.relative_to(bundle).as_posix()


def _machine_name(machine: str) -> str:
    names = {em: arch for arch, em in reversed(list(ELF_MACHINES.items()))}
    return names.get(machine, machine)


def _code_dir(bundle: Path, profile: BoardProfile, problems: list[AbiProblem]) -> str | None:
    """The Contents/<arch>-linux folder holding the plugin: the right one, else a legacy
    one (reported), so a misnamed bundle still gets every other check."""
    contents = bundle / "Contents"
    wanted = profile.bundle_arch_dir
    legacy = LEGACY_ARCH_DIRS.get(profile.arch)
    chosen = None
    if legacy and (contents / legacy).is_dir():
        problems.append(AbiProblem(f"Contents/{legacy}", "folder",
                                   f"Sushi needs Contents/{wanted}, not {legacy} (older JUCE's name): "
                                   f"rename it, as the bundle step does"))
        chosen = legacy
    if (contents / wanted).is_dir():
        chosen = wanted
    if chosen is None:
        found = sorted(p.name for p in contents.glob("*-linux")) if contents.is_dir() else []
        shown = f" (it has Contents/{', Contents/'.join(found)})" if found else ""
        problems.append(AbiProblem(f"Contents/{wanted}", "folder",
                                   f"is missing{shown}: the bundle has no code for {profile.arch}; "
                                   f"build the plugin with an {profile.arch} toolchain"))
        return None
    binary = plugin_binary(bundle, chosen)
    if not binary.is_file():
        problems.append(AbiProblem(_rel(bundle, binary), "folder",
                                   "is missing: Sushi loads the plugin code from there, "
                                   "named after the bundle"))
        return None
    return chosen


# ---- glibc and libstdc++ versions ----------------------------------------------

def _version_problems(bundle: Path, path: Path, profile: BoardProfile) -> list[AbiProblem]:
    problems = []
    needs = glibc_needs(path)
    for prefix, rule, has, library in (("GLIBC", "glibc", profile.abi.glibc, "glibc"),
                                       ("GLIBCXX", "glibcxx", profile.abi.glibcxx, "libstdc++")):
        needed = needs.get(prefix)
        if needed is None or _version_key(needed) <= _version_key(has):
            continue
        too_new = [v for v in _needed_versions(path, prefix) if _version_key(v) > _version_key(has)]
        symbols = _symbols_at(path, [f"{prefix}_{v}" for v in too_new])
        example = f" (e.g. {', '.join(symbols)})" if symbols else ""
        fitting = _fitting_toolchains(profile)
        fix = (f"rebuild it with {' or '.join(fitting)}" if fitting
               else f"rebuild it against {library} {has} or older")
        problems.append(AbiProblem(_rel(bundle, path), rule,
                                   f"needs {prefix}_{needed}{example}; the {profile.name} board has "
                                   f"{library} {has}{' (inferred)' if profile.abi_inferred else ''}: {fix}"))
    return problems


def _needed_versions(path: Path, prefix: str) -> list[str]:
    versions = []
    for _file, aux in _verneed_entries(path):
        name = aux.name
        if name.startswith(prefix + "_") and name[len(prefix) + 1:][:1].isdigit():
            versions.append(name[len(prefix) + 1:])
    return versions


def _verneed_entries(path: Path) -> list[tuple[str, object]]:
    entries = []
    try:
        with open(path, "rb") as handle:
            for section in ELFFile(handle).iter_sections():
                if isinstance(section, GNUVerNeedSection):
                    for verneed, auxes in section.iter_versions():
                        entries += [(verneed.name, aux) for aux in auxes]
    except (ELFError, OSError):
        return []
    return entries


def _symbols_at(path: Path, version_names: list[str], limit: int = 3) -> list[str]:
    """Imported symbols bound to any of `version_names` (what makes the file need them)."""
    wanted = set(version_names)
    indexes = {aux["vna_other"] for _file, aux in _verneed_entries(path) if aux.name in wanted}
    if not indexes:
        return []
    found: list[str] = []
    try:
        with open(path, "rb") as handle:
            elf = ELFFile(handle)
            versym = next((s for s in elf.iter_sections() if isinstance(s, GNUVerSymSection)), None)
            dynsym = elf.get_section_by_name(".dynsym")
            if versym is None or not isinstance(dynsym, SymbolTableSection):
                return []
            for number, symbol in enumerate(dynsym.iter_symbols()):
                index = versym.get_symbol(number)["ndx"]
                if isinstance(index, int) and (index & 0x7FFF) in indexes and symbol.name not in found:
                    found.append(symbol.name)
                    if len(found) == limit:
                        break
    except (ELFError, OSError):
        return []
    return found


def _fitting_toolchains(profile: BoardProfile) -> list[str]:
    """Toolchains for the board's arch whose sysroot is no newer than the board."""
    board = (_version_key(profile.abi.glibc), _version_key(profile.abi.glibcxx))
    fits = [t for t in TOOLCHAINS.values() if t.arch == profile.arch
            and _version_key(t.abi.glibc) <= board[0] and _version_key(t.abi.glibcxx) <= board[1]]
    # Closest to the board first: it offers the most of what the board has.
    fits.sort(key=lambda t: (_version_key(t.abi.glibc), _version_key(t.abi.glibcxx), t.name), reverse=True)
    return [t.name for t in fits]


# ---- DT_NEEDED resolution -------------------------------------------------------

def _needed_problems(bundle: Path, binary: Path | None, elves: list[ElfDynamic],
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
            problems += _load_like_the_board(bundle, root, by_path, by_name, profile, reached)
    unique: list[AbiProblem] = []
    for problem in problems:
        if problem not in unique:
            unique.append(problem)
    return unique


def _load_like_the_board(bundle: Path, root: Path, by_path: dict[Path, ElfDynamic],
                         by_name: dict[str, Path], profile: BoardProfile,
                         reached: set[Path]) -> list[AbiProblem]:
    """Follow glibc's loader breadth first from `root`: a SONAME loaded once serves every
    later request; DT_RUNPATH serves only its own object's needs, while DT_RPATH
    (when there is no RUNPATH) is inherited by what that object loads."""
    bundle_real = bundle.resolve()
    first = by_path[root]
    loaded = {root.name, *([first.soname] if first.soname else [])}
    queue: deque[tuple[ElfDynamic, list[Path]]] = deque([(first, [])])
    reached.add(root)
    problems = []
    while queue:
        elf, inherited = queue.popleft()
        own_rpath = elf.expand(elf.rpath) if not elf.runpath else []
        dirs = elf.expand(elf.runpath) if elf.runpath else own_rpath + inherited
        dirs = [Path(os.path.realpath(d)) for d in dirs]
        rel = _rel(bundle, elf.path)
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
                where = _rel(bundle, by_name[soname])
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

def _export_problems(bundle: Path, binary: Path, profile: BoardProfile) -> list[AbiProblem]:
    if elf_machine(binary) != profile.elf_machine:
        return []  # reported by the arch rule
    exported = _exported_functions(binary)
    return [AbiProblem(_rel(bundle, binary), "exports",
                       f"does not export the function {name}, so Sushi cannot load it as a VST3 "
                       f"plugin: build the JUCE <Name>_VST3 target and keep its entry points visible")
            for name in VST3_EXPORTS if name not in exported]


def _exported_functions(path: Path) -> set[str]:
    """Defined, visible FUNC symbols of the dynamic symbol table (what dlsym finds)."""
    names = set()
    try:
        with open(path, "rb") as handle:
            dynsym = ELFFile(handle).get_section_by_name(".dynsym")
            if not isinstance(dynsym, SymbolTableSection):
                return names
            for symbol in dynsym.iter_symbols():
                if (symbol["st_shndx"] != "SHN_UNDEF" and symbol["st_info"]["type"] == "STT_FUNC"
                        and symbol["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK")
                        and symbol["st_other"]["visibility"] in ("STV_DEFAULT", "STV_PROTECTED")):
                    names.add(symbol.name)
    except (ELFError, OSError):
        return set()
    return names
