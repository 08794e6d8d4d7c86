"""The TFLite 2.11 patch set against fixtures shaped like upstream's flatbuffers.cmake."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from elkbuild.deps.patching import PatchFailed, apply_patches, parse_patch
from elkbuild.deps.recipes import BUILTIN_RECIPES, load_recipes, select

from deps_helpers import FIXTURES

MODULE = "tensorflow/lite/tools/cmake/modules/flatbuffers.cmake"


def tflite_patches() -> list[Path]:
    recipe = select(load_recipes([BUILTIN_RECIPES]), "elk-sdk-1.0.0", only="tflite")[0]
    return recipe.patch_files()


def copy_fixture(name: str, tmp_path: Path) -> Path:
    tree = tmp_path / name
    shutil.copytree(FIXTURES / name, tree)
    return tree


def test_flatbuffers_pin_moves_to_v2_0_8(tmp_path: Path):
    tree = copy_fixture("tflite-2.11.0", tmp_path)
    before = (tree / MODULE).read_text().splitlines()
    assert apply_patches(tree, tflite_patches()) == [MODULE]
    after = (tree / MODULE).read_text().splitlines()
    assert after[24] == "  GIT_TAG v2.0.8"
    assert "  GIT_TAG v2.0.6" not in after
    # Only that one line changed.
    assert [i for i, (a, b) in enumerate(zip(before, after)) if a != b] == [24]
    assert len(before) == len(after)


def test_patch_still_applies_when_upstream_lines_shift(tmp_path: Path):
    tree = copy_fixture("tflite-2.11.0", tmp_path)
    module = tree / MODULE
    module.write_text("# two more lines\n# above the block\n" + module.read_text())
    apply_patches(tree, tflite_patches())
    assert "  GIT_TAG v2.0.8" in module.read_text().splitlines()


def test_mismatching_upstream_fails_naming_file_and_hunk_and_changes_nothing(tmp_path: Path):
    tree = copy_fixture("tflite-moved", tmp_path)
    before = (tree / MODULE).read_bytes()
    with pytest.raises(PatchFailed) as info:
        apply_patches(tree, tflite_patches())
    message = info.value.one_line()
    assert "flatbuffers-v2.0.8.patch" in message
    assert MODULE in message
    assert "hunk #1 (@@ -25 +25 @@)" in message
    assert "line 25: expected '  GIT_TAG v2.0.6', found '  GIT_TAG v23.5.26'" in info.value.message
    assert (tree / MODULE).read_bytes() == before


def test_all_or_nothing_across_files(tmp_path: Path):
    (tmp_path / "a.txt").write_text("one\ntwo\n")
    (tmp_path / "b.txt").write_text("three\n")
    patch = tmp_path / "two.patch"
    patch.write_text("--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+TWO\n"
                     "--- a/b.txt\n+++ b/b.txt\n@@ -1 +1 @@\n-not three\n+3\n")
    with pytest.raises(PatchFailed) as info:
        apply_patches(tmp_path, [patch])
    assert "b.txt" in info.value.one_line() and "hunk #1" in info.value.one_line()
    assert (tmp_path / "a.txt").read_text() == "one\ntwo\n"


def test_patch_for_a_file_that_is_gone(tmp_path: Path):
    with pytest.raises(PatchFailed) as info:
        apply_patches(tmp_path, tflite_patches())
    assert f"file {MODULE} does not exist" in info.value.one_line()


def test_text_that_is_not_a_patch(tmp_path: Path):
    with pytest.raises(PatchFailed, match="no hunks"):
        parse_patch("just words\n", "words.patch")


def test_hunk_ends_where_its_header_says(tmp_path: Path):
    """git format-patch ends with a "-- " signature line; it is not a removed line."""
    (tmp_path / "f.txt").write_text("a\nb\n")
    patch = tmp_path / "git.patch"
    patch.write_text("From 1 Mon Sep 17 00:00:00 2001\nSubject: x\n---\n"
                     "--- a/f.txt\n+++ b/f.txt\n@@ -1,2 +1,2 @@\n a\n-b\n+B\n-- \n2.39.2\n")
    assert apply_patches(tmp_path, [patch]) == ["f.txt"]
    assert (tmp_path / "f.txt").read_text() == "a\nB\n"


def test_truncated_hunk_is_reported(tmp_path: Path):
    patch = tmp_path / "cut.patch"
    patch.write_text("--- a/f.txt\n+++ b/f.txt\n@@ -1,3 +1,3 @@\n a\n-b\n")
    with pytest.raises(PatchFailed, match="ends early"):
        parse_patch(patch.read_text(), patch.name)
