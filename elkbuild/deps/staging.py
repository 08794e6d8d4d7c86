"""Staged prefixes: build/deps/<toolchain>/<name>-<version>/{include,lib,elkbuild-dep.json}.

A prefix is assembled in a hidden sibling folder and renamed into place only
when its outputs are checked, so a failed or interrupted build leaves the
previous prefix (or none) untouched, never a half one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterable, Mapping

from elkbuild.elf import GLIBC_FAMILIES, MACHINES, elf_machine, highest, read_elf_or_none
from elkbuild.errors import BuildError
from elkbuild.executor import Executor
from elkbuild.deps.recipes import InstallRule

METADATA = "elkbuild-dep.json"
_LIB = re.compile(r"\.(so(\.\d+)*|a)$")


def prefix_dir(build_dir: Path, toolchain: str, key: str) -> Path:
    return build_dir / "deps" / toolchain / key


def read_metadata(prefix: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((prefix / METADATA).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class Stage:
    """A prefix under construction; `commit()` swaps it in atomically."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.path = final.parent / f".{final.name}.new-{uuid.uuid4().hex[:8]}"
        self.path.mkdir(parents=True)

    def commit(self, metadata: Mapping[str, Any] | None) -> Path:
        """Swap in the staged tree; `metadata` None writes no elkbuild-dep.json (bundles)."""
        if metadata is not None:
            tmp_meta = self.path / f".{METADATA}.tmp"
            tmp_meta.write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
            tmp_meta.replace(self.path / METADATA)
        old = None
        if self.final.exists():
            old = self.final.parent / f".{self.final.name}.old-{uuid.uuid4().hex[:8]}"
            self.final.rename(old)
        self.path.rename(self.final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.final

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def glob_base(pattern: str) -> str:
    """The folders before a glob's first wildcard: copies keep paths relative to it."""
    fixed = []
    for part in pattern.split("/")[:-1]:
        if any(c in part for c in "*?["):
            break
        fixed.append(part)
    return "/".join(fixed)


def copy_rules(rules: Iterable[InstallRule], roots: Mapping[str, Path], prefix: Path) -> int:
    """Copy files matching each rule into the prefix. Returns the number copied.

    `tensorflow/lite/**/*.h` to `include/tensorflow/lite` keeps the tree below
    tensorflow/lite; `flatten` drops all folders.
    """
    count = 0
    for rule in rules:
        root = roots.get(rule.root)
        if root is None or not root.is_dir():
            raise BuildError(f"install rule from {rule.root!r}: that tree does not exist",
                             "use source, build, install or fetch:<content> of this recipe")
        base = root / glob_base(rule.glob)
        for found in sorted(root.glob(rule.glob)):
            if found.is_dir() and not found.is_symlink():
                continue
            rel = Path(found.name) if rule.flatten else found.relative_to(base)
            target = prefix / rule.to / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if found.is_symlink():
                if target.is_symlink() or target.exists():
                    target.unlink()
                os.symlink(os.readlink(found), target)
            else:
                shutil.copy2(found, target)
            count += 1
    return count


def unpack_debs(executor: Executor, debs: Iterable[Path], prefix: Path, scratch: Path) -> list[str]:
    """dpkg -x each .deb, then keep only headers and libraries, relocated to include/ and lib/.

    Multiarch folders (usr/lib/<triplet>/) are flattened into lib/; Debian's CMake
    package files assume the /usr layout and are left out (they would point at
    the build host's /usr); pkg-config files are re-rooted at the prefix.
    """
    moved: list[str] = []
    for deb in debs:
        tree = scratch / deb.stem
        if tree.exists():
            shutil.rmtree(tree)
        tree.mkdir(parents=True)
        executor.run(["dpkg", "-x", str(deb), str(tree)], hint="is dpkg installed (Debian/Ubuntu)?")
        usr = tree / "usr"
        mapping: list[tuple[Path, Path]] = []
        if (usr / "include").is_dir():
            mapping.append((usr / "include", prefix / "include"))
        lib = usr / "lib"
        if lib.is_dir():
            for entry in sorted(lib.iterdir()):
                if entry.is_dir() and not entry.is_symlink() and re.match(r"^[a-z0-9_]+-linux-gnu", entry.name):
                    mapping.append((entry, prefix / "lib"))
                elif _LIB.search(entry.name):
                    mapping.append((entry, prefix / "lib" / entry.name))
        for src, dst in mapping:
            moved += _merge(src, dst, prefix)
    _relative_symlinks(prefix, scratch)
    _reroot_pkgconfig(prefix)
    return sorted(moved)


def unpack_overlay(executor: Executor, debs: Iterable[Path], overlay: Path) -> None:
    """dpkg -x build-time packages into one tree, keeping Debian's layout; links made relative."""
    overlay.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        executor.run(["dpkg", "-x", str(deb), str(overlay)], hint="is dpkg installed (Debian/Ubuntu)?")
    for link in [p for p in overlay.rglob("*") if p.is_symlink()]:
        target = os.readlink(link)
        if os.path.isabs(target):
            link.unlink()
            link.symlink_to(os.path.relpath(overlay / target.lstrip("/"), link.parent))
    # Some Debian CMake package files name /usr/... literally (fft2d's does); in the
    # overlay those must point inside it, not at the build machine's own /usr.
    literal = re.compile(r"(?<![\w/.$}])/usr/(include|lib|share)/")
    for config in overlay.glob("usr/**/cmake/**/*.cmake"):
        text = config.read_text(errors="replace")
        fixed = literal.sub(lambda m: f"{overlay}/usr/{m.group(1)}/", text)
        if fixed != text:
            config.write_text(fixed)


def _merge(src: Path, dst: Path, prefix: Path) -> list[str]:
    moved = []
    items = [src] if not src.is_dir() or src.is_symlink() else None
    if items is None:
        for root, dirs, files in os.walk(src):
            rel_root = Path(root).relative_to(src)
            if rel_root.parts and rel_root.parts[0] == "cmake":
                dirs[:] = []
                continue
            for name in [*files, *[d for d in dirs if Path(root, d).is_symlink()]]:
                source = Path(root, name)
                target = dst / rel_root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_symlink() or target.exists():
                    target.unlink()
                os.replace(source, target)
                moved.append(target.relative_to(prefix).as_posix())
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        moved.append(dst.relative_to(prefix).as_posix())
    return moved


def _relative_symlinks(prefix: Path, scratch: Path) -> None:
    """Absolute links (/usr/lib/<triplet>/libx.so.1) become links inside the prefix."""
    for link in [p for p in prefix.rglob("*") if p.is_symlink()]:
        target = os.readlink(link)
        if not os.path.isabs(target):
            continue
        parts = Path(target).parts
        if len(parts) > 2 and parts[1] == "usr" and parts[2] == "include":
            inside = prefix / "include" / Path(*parts[3:])
        elif len(parts) > 2 and parts[1] == "usr" and parts[2] == "lib":
            rest = parts[3:]
            if rest and re.match(r"^[a-z0-9_]+-linux-gnu", rest[0]):
                rest = rest[1:]
            inside = prefix / "lib" / Path(*rest)
        else:
            raise BuildError(f"staged link {link.relative_to(prefix)} points outside the package: {target}",
                             "add the package that provides it to the recipe")
        link.unlink()
        link.symlink_to(os.path.relpath(inside, link.parent))


def _reroot_pkgconfig(prefix: Path) -> None:
    for pc in (prefix / "lib" / "pkgconfig").glob("*.pc") if (prefix / "lib" / "pkgconfig").is_dir() else ():
        text = pc.read_text()
        text = re.sub(r"^prefix=.*$", "prefix=${pcfiledir}/../..", text, flags=re.M)
        text = re.sub(r"^(libdir=\$\{(?:exec_)?prefix\}/lib)/[a-z0-9_]+-linux-gnu", r"\1", text, flags=re.M)
        pc.write_text(text)


def check_outputs(prefix: Path, outputs: Iterable[str], arch: str, recipe_file: Path) -> dict[str, Any]:
    """Every expected output exists; every library is an ELF for `arch`. Returns ABI facts."""
    missing = [o for o in outputs if not (prefix / o).exists()]
    if missing:
        raise BuildError(f"{recipe_file}: outputs missing from the staged prefix: {', '.join(missing)}",
                         "fix the recipe's install rules or outputs list")
    dangling = [p.relative_to(prefix).as_posix() for p in prefix.rglob("*")
                if p.is_symlink() and not p.exists()]
    if dangling:
        raise BuildError(f"{recipe_file}: staged links point at nothing: {', '.join(dangling)}",
                         "add the package or install rule that provides their targets")
    expected = MACHINES.get(arch)
    wrong = []
    needs: dict[str, str] = {}
    libs = []
    for lib in sorted((prefix / "lib").rglob("*")) if (prefix / "lib").is_dir() else []:
        if lib.is_symlink() or not lib.is_file() or not _LIB.search(lib.name):
            continue
        libs.append(lib.relative_to(prefix).as_posix())
        machine = elf_machine(lib)
        if expected and machine is not None and machine != expected:
            wrong.append(f"{lib.relative_to(prefix)} ({machine})")
        info = read_elf_or_none(lib) if ".so" in lib.name else None
        for family in GLIBC_FAMILIES if info else ():
            newest = highest(v for v in (needs.get(family), info.highest_needed(family)) if v)
            if newest:
                needs[family] = newest
    if wrong:
        raise BuildError(f"staged libraries are not {arch}: {', '.join(wrong)}",
                         "the source or package is for another architecture; check the recipe's arch")
    return {"libraries": libs, "needs": needs}
