"""Board profiles: what a target board's system gives a plugin (toolchain/boards/profiles.yaml).

A profile is the other half of a toolchain's `Abi`: the toolchain says what a
binary may require, the profile what the board has. The ABI gate compares a
bundle against a profile before anything is deployed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from elkbuild.build.toolchains import TOOLCHAIN_DIR, Abi
from elkbuild.bundle.layout import arch_dir
from elkbuild.elf import MACHINES
from elkbuild.errors import MISSING, ConfigError, UsageError

BOARD_PROFILES_FILE = TOOLCHAIN_DIR / "boards" / "profiles.yaml"

_KEYS = {"description", "os_version", "arch", "abi", "abi_source", "system_libraries"}
_REQUIRED = ("arch", "abi", "system_libraries")
_ABI_SOURCES = ("measured", "inferred")
_GLIBC = re.compile(r"^\d+\.\d+$")
_GLIBCXX = re.compile(r"^\d+\.\d+\.\d+$")
_SONAME = re.compile(r"^[A-Za-z0-9_+.-]+\.so(\.\d+)*$")


@dataclass(frozen=True)
class BoardProfile:
    name: str
    arch: str  # uname -m of the board: it names the bundle's code folder (<arch>-linux)
    abi: Abi  # the highest GLIBC_/GLIBCXX_ versions the board's libc and libstdc++ define
    system_libraries: frozenset[str]  # SONAMEs the board's system provides
    description: str = ""
    os_version: str | None = None  # "0.11" | "1.x"; None when not an Elk release
    abi_inferred: bool = False  # True: the ABI comes from the Yocto release, not a board

    @property
    def bundle_arch_dir(self) -> str:
        return arch_dir(self.arch)

    @property
    def elf_machine(self) -> str:
        return MACHINES[self.arch]


def load_board_profiles(path: Path = BOARD_PROFILES_FILE) -> dict[str, BoardProfile]:
    """Every profile of `path`, validated; ConfigError naming the file and key otherwise."""
    path = Path(path).resolve()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as error:
        raise ConfigError(path, "", MISSING, f"cannot be read: {error.strerror}") from None
    return dict(_load(path, stamp))


@lru_cache(maxsize=8)
def _load(path: Path, stamp: int) -> tuple[tuple[str, BoardProfile], ...]:
    """Parsed once per version of the file (`stamp` is its mtime)."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigError(path, "", MISSING, f"cannot be read: {error.strerror}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(path, "", MISSING, f"is not valid YAML{where}") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(path, "", data, "must map board profile names to profiles")
    return tuple((str(name), _profile(path, str(name), raw)) for name, raw in data.items())


def _profile(path: Path, name: str, raw: Any) -> BoardProfile:
    if not isinstance(raw, dict):
        raise ConfigError(path, name, raw, "must be a mapping with arch, abi and system_libraries")
    unknown = sorted(set(map(str, raw)) - _KEYS)
    if unknown:
        raise ConfigError(path, f"{name}.{unknown[0]}", raw[unknown[0]],
                          f"unknown key; allowed: {', '.join(sorted(_KEYS))}")
    for key in _REQUIRED:
        if key not in raw:
            raise ConfigError(path, f"{name}.{key}", MISSING, "is required")
    arch = raw["arch"]
    if arch not in MACHINES:
        raise ConfigError(path, f"{name}.arch", arch, f"allowed: {', '.join(MACHINES)}")
    abi = raw["abi"]
    if not isinstance(abi, dict) or set(abi) != {"glibc", "glibcxx"}:
        raise ConfigError(path, f"{name}.abi", abi,
                          "needs exactly glibc and glibcxx, e.g. {glibc: '2.35', glibcxx: '3.4.29'}")
    for key, pattern, example in (("glibc", _GLIBC, "2.35"), ("glibcxx", _GLIBCXX, "3.4.29")):
        # Quoted on purpose: YAML reads 2.30 as the float 2.3.
        if not isinstance(abi[key], str) or not pattern.match(abi[key]):
            raise ConfigError(path, f"{name}.abi.{key}", abi[key], f"must be a quoted version like '{example}'")
    libraries = raw["system_libraries"]
    if not isinstance(libraries, list) or not libraries:
        raise ConfigError(path, f"{name}.system_libraries", libraries, "must be a non-empty list of SONAMEs")
    for index, soname in enumerate(libraries):
        if not isinstance(soname, str) or not _SONAME.match(soname):
            raise ConfigError(path, f"{name}.system_libraries[{index}]", soname,
                              "must be a SONAME such as libc.so.6")
    source = raw.get("abi_source", "measured")
    if source not in _ABI_SOURCES:
        raise ConfigError(path, f"{name}.abi_source", source, f"allowed: {', '.join(_ABI_SOURCES)}")
    os_version = raw.get("os_version")
    if os_version is not None and os_version not in ("0.11", "1.x"):
        raise ConfigError(path, f"{name}.os_version", os_version, "allowed: '0.11', '1.x' or null")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(path, f"{name}.description", description, "must be text")
    return BoardProfile(name=name, arch=arch, abi=Abi(glibc=abi["glibc"], glibcxx=abi["glibcxx"]),
                        system_libraries=frozenset(libraries), description=description,
                        os_version=os_version, abi_inferred=source == "inferred")


def get_board_profile(name: str, path: Path = BOARD_PROFILES_FILE) -> BoardProfile:
    """The profile called `name`; UsageError listing the known names otherwise."""
    profiles = load_board_profiles(path)
    try:
        return profiles[name]
    except KeyError:
        raise UsageError(f"unknown board profile {name!r} in {path}; known: {', '.join(sorted(profiles))}",
                         "pick one of the known profiles or add it to that file") from None


def profile_for_os(os_version: str, path: Path = BOARD_PROFILES_FILE) -> BoardProfile:
    """The profile of the Elk Audio OS line `os_version` ("0.11" or "1.x"): what a board
    of that line gives a plugin, so what a bundle deployed there must fit."""
    for profile in load_board_profiles(path).values():
        if profile.os_version == os_version:
            return profile
    raise ConfigError(path, "", MISSING, f"has no profile with os_version {os_version!r}",
                      f"add one (os_version: {os_version!r}) to {path.name}")
