"""Staging Debian packages: only headers and libraries, relocated, links made relative, ELF checked."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from elkbuild.deps.staging import check_outputs, unpack_debs
from elkbuild.elf import elf_machine
from elkbuild.errors import BuildError
from elkbuild.executor import LocalExecutor

EM = {"aarch64": 183, "x86_64": 62}


def tiny_elf(machine: str) -> bytes:
    """A 64-bit little-endian ELF header of a shared object for `machine` (no sections)."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    return ident + struct.pack("<HHIQQQIHHHHHH", 3, EM[machine], 1, 0, 0, 0, 0, 64, 0, 0, 64, 0, 0)


def make_deb(tmp_path: Path, name: str, machine: str = "aarch64") -> Path:
    root = tmp_path / f"{name}-root"
    lib = root / "usr" / "lib" / "aarch64-linux-gnu"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1.0\nArchitecture: arm64\nMaintainer: t <t@example.org>\nDescription: t\n")
    (root / "usr" / "include" / name).mkdir(parents=True)
    (root / "usr" / "include" / name / f"{name}.h").write_text("int f(void);\n")
    (lib / "cmake" / name).mkdir(parents=True)
    (lib / "cmake" / name / f"{name}Config.cmake").write_text("# assumes /usr\n")
    (lib / "pkgconfig").mkdir()
    (lib / "pkgconfig" / f"{name}.pc").write_text(
        "prefix=/usr\nlibdir=${prefix}/lib/aarch64-linux-gnu\nincludedir=${prefix}/include\n")
    (lib / f"lib{name}.so.1.0").write_bytes(tiny_elf(machine))
    os.symlink(f"lib{name}.so.1.0", lib / f"lib{name}.so.1")
    os.symlink(f"/usr/lib/aarch64-linux-gnu/lib{name}.so.1", lib / f"lib{name}.so")
    (root / "usr" / "share" / "doc" / name).mkdir(parents=True)
    (root / "usr" / "share" / "doc" / name / "copyright").write_text("free\n")
    deb = tmp_path / f"{name}_1.0_arm64.deb"
    LocalExecutor().run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)])
    return deb


def test_debs_become_include_and_lib(tmp_path: Path):
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    moved = unpack_debs(LocalExecutor(), [make_deb(tmp_path, "foo")], prefix, tmp_path / "scratch")
    assert sorted(p.name for p in prefix.iterdir()) == ["include", "lib"]
    assert "include/foo/foo.h" in moved and "lib/libfoo.so.1.0" in moved
    assert not (prefix / "lib" / "cmake").exists()  # Debian's /usr-relative CMake files are left out
    link = prefix / "lib" / "libfoo.so"
    assert os.readlink(link) == "libfoo.so.1" and link.resolve() == (prefix / "lib" / "libfoo.so.1.0")
    pc = (prefix / "lib" / "pkgconfig" / "foo.pc").read_text()
    assert "prefix=${pcfiledir}/../..\nlibdir=${prefix}/lib\n" in pc
    facts = check_outputs(prefix, ["include/foo/foo.h", "lib/libfoo.so"], "aarch64", Path("foo.yaml"))
    assert facts["libraries"] == ["lib/libfoo.so.1.0"]
    assert elf_machine(prefix / "lib" / "libfoo.so.1.0") == "EM_AARCH64"


def test_library_of_another_architecture_is_refused(tmp_path: Path):
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    unpack_debs(LocalExecutor(), [make_deb(tmp_path, "bar", machine="x86_64")], prefix, tmp_path / "scratch")
    with pytest.raises(BuildError) as info:
        check_outputs(prefix, ["lib/libbar.so"], "aarch64", Path("bar.yaml"))
    assert "lib/libbar.so.1.0 (EM_X86_64)" in info.value.one_line()


def test_dangling_link_is_refused(tmp_path: Path):
    prefix = tmp_path / "prefix"
    (prefix / "lib").mkdir(parents=True)
    os.symlink("libgone.so.3", prefix / "lib" / "libgone.so")
    with pytest.raises(BuildError, match="point at nothing: lib/libgone.so"):
        check_outputs(prefix, [], "aarch64", Path("gone.yaml"))
