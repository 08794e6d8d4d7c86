"""build-deps --dry-run: says what it would fetch, run and stage, and changes nothing."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import run_task
from deps_helpers import make_tarball, sha256_of, write_recipe


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under root with its mtime and size: any write shows up."""
    return {str(p.relative_to(root)): (p.lstat().st_mtime_ns, p.lstat().st_size)
            for p in sorted(root.rglob("*"))}


def test_dry_run_names_the_cmake_commands_and_writes_nothing(tmp_path: Path):
    tarball = make_tarball(tmp_path / "up" / "lib-1.0.tar.gz",
                           {"CMakeLists.txt": "project(lib C)\n"}, "lib-1.0")
    write_recipe(tmp_path / "deps" / "recipes", "lib",
                 f"name: lib\nversion: '1.0'\ntoolchains: [debian-arm64]\n"
                 f"sources: [{{id: main, url: '{tarball.as_uri()}', sha256: '{sha256_of(tarball)}'}}]\n"
                 "build: {system: cmake, cmake_install: true}\n"
                 "install: [{from: install, glob: 'lib/*.so', to: lib}]\noutputs: [lib/liblib.so]\n")
    (tmp_path / "cache").mkdir()
    before = snapshot(tmp_path)
    done = run_task("build-deps", "--toolchain", "debian-arm64", "--only", "lib", "--local",
                    "--dry-run", project=tmp_path, env={"ELKBUILD_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    work = tmp_path / "build" / "deps" / "debian-arm64" / ".work" / "lib-1.0"
    assert f"would fetch lib-1.0: main {tarball.as_uri()}" in done.stderr.replace("\n", "")
    assert f"would run: cmake -S {work}/src -B {work}/build" in done.stderr
    assert f"would run: cmake --build {work}/build" in done.stderr
    assert f"would run: cmake --install {work}/build" in done.stderr
    assert done.stdout.strip() == (f"lib 1.0: would build (no staged prefix yet) -> "
                                   f"{tmp_path}/build/deps/debian-arm64/lib-1.0")
    assert snapshot(tmp_path) == before
