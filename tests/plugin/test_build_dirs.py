"""Build folders are named after the plugin: one configured for a project elsewhere
(moved, or another project of the same name) is started afresh, since CMake refuses
a build folder whose source has changed."""

from __future__ import annotations

from pathlib import Path

from elkbuild.build.cmake import forget_build_of_other_source


def _configured_for(build: Path, source: Path) -> None:
    build.mkdir(parents=True, exist_ok=True)
    (build / "CMakeCache.txt").write_text(
        "CMAKE_BUILD_TYPE:STRING=Release\n"
        f"CMAKE_HOME_DIRECTORY:INTERNAL={source}\n")
    (build / "build.ninja").write_text("")


def test_a_build_folder_of_another_source_is_removed(tmp_path: Path):
    build, here, elsewhere = tmp_path / "build" / "Fx", tmp_path / "here" / "Fx", tmp_path / "old" / "Fx"
    here.mkdir(parents=True)
    _configured_for(build, elsewhere)
    assert forget_build_of_other_source(build, here)
    assert not build.exists()


def test_a_build_folder_of_the_same_source_is_kept(tmp_path: Path):
    build, here = tmp_path / "build" / "Fx", tmp_path / "here" / "Fx"
    here.mkdir(parents=True)
    _configured_for(build, here)
    assert not forget_build_of_other_source(build, here)
    assert (build / "build.ninja").exists()
    # No build folder yet, or one CMake never configured: nothing to do.
    assert not forget_build_of_other_source(tmp_path / "none", here)
