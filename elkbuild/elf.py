"""Every ELF read elkbuild makes (pyelftools lives here only), and symbol-version order.

Bundling, the ABI gate, staging and the toolchain ABI all ask the same questions
of a shared object: its machine, SONAME, DT_NEEDED, RUNPATH, the symbol versions
it needs (GLIBC_2.34) or defines, and the functions it exports. `read_elf` answers
the dynamic-section and version questions in one pass; symbol tables are read only
by the two functions that need them.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Sequence

from elftools.common.exceptions import ELFError
from elftools.construct.core import ConstructError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection, GNUVerSymSection
from elftools.elf.sections import SymbolTableSection

from elkbuild.errors import BuildError

ORIGIN = "$ORIGIN"
MAGIC = b"\x7fELF"
AR_MAGIC = b"!<arch>\n"
MACHINES = {"aarch64": "EM_AARCH64", "arm64": "EM_AARCH64", "x86_64": "EM_X86_64",
            "amd64": "EM_X86_64"}
"""e_machine of each architecture name a toolchain, profile or recipe may use."""
GLIBC_FAMILIES = ("GLIBC", "GLIBCXX")
"""The symbol-version families a board's libc and libstdc++ define."""


def version_key(text: str) -> tuple[int, ...]:
    """Versions compare by their numbers, not as text: '3.4.30' -> (3, 4, 30)."""
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def versions_of(names: Iterable[str], family: str) -> list[str]:
    """The numeric versions of one family among version names: GLIBC_2.34 -> "2.34"."""
    pattern = re.compile(rf"^{re.escape(family)}_(\d+(?:\.\d+)*)$")
    return [match.group(1) for name in names if (match := pattern.match(name))]


def highest(versions: Iterable[str]) -> str | None:
    found = list(versions)
    return max(found, key=version_key) if found else None


@dataclass(frozen=True)
class ElfInfo:
    """The dynamic-linking facts of one ELF file."""

    path: Path
    machine: str                        # e_machine, e.g. "EM_AARCH64"
    soname: str | None
    needed: tuple[str, ...]             # DT_NEEDED, in load order
    runpath: tuple[str, ...]            # DT_RUNPATH entries, unexpanded
    rpath: tuple[str, ...]              # DT_RPATH entries (obsolete; ignored when RUNPATH is set)
    needed_versions: tuple[str, ...] = ()   # version names it requires, e.g. GLIBC_2.34
    defined_versions: tuple[str, ...] = ()  # version names it defines (a libc defines GLIBC_*)

    def expand(self, entries: Sequence[str]) -> list[Path]:
        """Entries with $ORIGIN replaced by this file's folder; others kept only when absolute."""
        origin = str(self.path.parent)
        dirs = []
        for entry in entries:
            entry = entry.replace("${ORIGIN}", origin).replace(ORIGIN, origin)
            if os.path.isabs(entry) and "$" not in entry:
                dirs.append(Path(os.path.normpath(entry)))
        return dirs

    def highest_needed(self, family: str) -> str | None:
        """The newest `family` version required: "GLIBC" -> "2.34"."""
        return highest(versions_of(self.needed_versions, family))

    def highest_defined(self, family: str) -> str | None:
        """The newest `family` version defined: a libc.so.6 of glibc 2.36 -> "2.36"."""
        return highest(versions_of(self.defined_versions, family))


def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == MAGIC
    except OSError:
        return False


def read_elf(path: Path) -> ElfInfo | None:
    """The facts of an ELF file; None when it is not one; BuildError when it is unreadable."""
    if not is_elf(path):
        return None
    try:
        with open(path, "rb") as handle:
            return _facts(Path(path), ELFFile(handle))
    except (ELFError, ConstructError, OSError, ValueError) as error:
        raise BuildError(f"{path}: not a readable ELF file ({error})",
                         "rebuild it; the file is truncated or corrupt") from None


def _facts(path: Path, elf: ELFFile) -> ElfInfo:
    needed: list[str] = []
    runpath: list[str] = []
    rpath: list[str] = []
    soname = None
    wants: list[str] = []
    defines: list[str] = []
    for section in elf.iter_sections():
        if isinstance(section, DynamicSection):
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
        elif isinstance(section, GNUVerNeedSection):
            for _verneed, auxiliaries in section.iter_versions():
                wants += [aux.name for aux in auxiliaries]
        elif isinstance(section, GNUVerDefSection):
            for _verdef, auxiliaries in section.iter_versions():
                defines += [aux.name for aux in auxiliaries]
    return ElfInfo(path=path, machine=elf.header["e_machine"], soname=soname, needed=tuple(needed),
                   runpath=tuple(runpath), rpath=tuple(rpath), needed_versions=tuple(wants),
                   defined_versions=tuple(defines))


def read_elf_or_none(path: Path) -> ElfInfo | None:
    """read_elf for surveys that skip what they cannot read (a corrupt file is not ELF here)."""
    try:
        return read_elf(path)
    except BuildError:
        return None


def elf_machine(path: Path) -> str | None:
    """e_machine of an ELF file, or of the first ELF member of an ar archive (.a)."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        if head[:4] == MAGIC:
            handle.seek(0)
            return _machine(handle)
        if head == AR_MAGIC:
            while True:
                header = handle.read(60)
                if len(header) < 60:
                    return None
                size = int(header[48:58].decode().strip() or 0)
                start = handle.tell()
                if handle.read(4) == MAGIC:
                    handle.seek(start)
                    return _machine(io.BytesIO(handle.read(size)))
                handle.seek(start + size + (size % 2))
    return None


def _machine(stream: BinaryIO) -> str | None:
    try:
        return ELFFile(stream).header["e_machine"]
    except (ELFError, ConstructError):
        return None


def symbols_bound_to(path: Path, version_names: Sequence[str], limit: int = 3) -> list[str]:
    """Imported symbols bound to any of `version_names` (what makes the file need them)."""
    wanted = set(version_names)
    found: list[str] = []
    try:
        with open(path, "rb") as handle:
            elf = ELFFile(handle)
            indexes = {aux["vna_other"] for section in elf.iter_sections()
                       if isinstance(section, GNUVerNeedSection)
                       for _verneed, auxes in section.iter_versions()
                       for aux in auxes if aux.name in wanted}
            versym = next((s for s in elf.iter_sections() if isinstance(s, GNUVerSymSection)), None)
            dynsym = elf.get_section_by_name(".dynsym")
            if not indexes or versym is None or not isinstance(dynsym, SymbolTableSection):
                return []
            for number, symbol in enumerate(dynsym.iter_symbols()):
                index = versym.get_symbol(number)["ndx"]
                if isinstance(index, int) and (index & 0x7FFF) in indexes and symbol.name not in found:
                    found.append(symbol.name)
                    if len(found) == limit:
                        break
    except (ELFError, ConstructError, OSError):
        return []
    return found


def exported_functions(path: Path) -> set[str]:
    """Defined, visible FUNC symbols of the dynamic symbol table (what dlsym finds)."""
    names: set[str] = set()
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
    except (ELFError, ConstructError, OSError):
        return set()
    return names
