"""Recipes are data: the built-in ones load, and a bad one is refused naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

import yaml

from elkbuild.deps.recipes import BUILTIN_RECIPES, load_recipe, load_recipes, parse_recipe, select
from elkbuild.errors import ConfigError, UsageError, ValidationFailed
from elkbuild.build.toolchains import TOOLCHAINS


def test_builtin_recipes_cover_every_aarch64_toolchain():
    recipes = load_recipes([BUILTIN_RECIPES])
    for name in ("debian-arm64", "elk-sdk-0.11.0", "elk-sdk-1.0.0", "elk-sdk-1.1.0"):
        assert name in TOOLCHAINS
        chosen = {r.name: r for r in select(recipes, name)}
        assert set(chosen) == {"onnxruntime", "tflite"}, name
        assert all(r.variant == "default" for r in chosen.values())


def test_debian_arm64_takes_both_engines_from_wheels_and_their_headers_from_debian():
    recipes = load_recipes([BUILTIN_RECIPES])
    chosen = {r.name: r for r in select(recipes, "debian-arm64")}
    tflite, ort = chosen["tflite"], chosen["onnxruntime"]
    # Debian's own TFLite needs glibc 2.38: the default is LiteRT's C API library.
    assert tflite.build.system == "copy" and tflite.version == "1.4.0"
    wheel = tflite.source("wheel")
    assert (wheel.kind, wheel.package, wheel.platform, wheel.sha256) == (
        "wheel", "ai-edge-litert==1.4.0", "manylinux_2_17_aarch64",
        "131d1c12dedc0c45aa683106d71ea895117c2332b0efb52712965f8b5e63781d")
    headers = tflite.source("headers")
    assert (headers.kind, headers.package, headers.suite, headers.stage, headers.sha256) == (
        "deb", "libtensorflow-lite-dev", "sid", False,
        "469d4f73e4afb64b1e3d1d1ac1e38c79ff1624420a8b99a39e9bd1a56ac1422e")
    # Debian's own ONNX Runtime needs glibc 2.38: the default is the wheel's library.
    assert ort.build.system == "copy" and ort.version == "1.21.1"
    wheel = ort.source("wheel")
    assert (wheel.kind, wheel.package, wheel.platform) == (
        "wheel", "onnxruntime==1.21.1", "manylinux_2_27_aarch64")
    headers = ort.source("headers")
    assert (headers.kind, headers.package, headers.suite, headers.stage) == (
        "deb", "libonnxruntime-dev", "trixie", False)

    debian = {r.name: r for r in select(recipes, "debian-arm64", variant="debian")}
    assert debian["tflite"].build.system == "debian"
    assert {(s.package, s.suite, s.arch) for s in debian["tflite"].sources} >= {
        ("libtensorflow-lite-dev", "sid", "arm64"), ("libtensorflow-lite2.14.1", "sid", "arm64")}
    assert debian["onnxruntime"].build.system == "debian"
    assert {(s.package, s.suite, s.arch) for s in debian["onnxruntime"].sources} == {
        ("libonnxruntime-dev", "trixie", "arm64"), ("libonnxruntime1.21", "trixie", "arm64")}


@pytest.mark.parametrize("source, key", [
    ({"id": "w", "wheel": "x==1", "platform": "manylinux_2_17_aarch64", "sha256": "abc"}, "sources[0].sha256"),
    ({"id": "d", "deb": "libx-dev", "suite": "sid", "sha256": "0" * 63}, "sources[0].sha256"),
    ({"id": "g", "git": "https://example.org/x.git", "tag": "v1", "sha256": "0" * 64}, "sources[0].sha256"),
])
def test_a_sha256_is_64_hex_digits_on_url_deb_and_wheel_sources_only(tmp_path: Path, source, key):
    recipe = {"name": "x", "version": "1", "toolchains": ["debian-arm64"], "sources": [source],
              "build": {"system": "copy"}, "outputs": ["lib/libx.so"]}
    with pytest.raises(ValidationFailed) as failed:
        parse_recipe(tmp_path / "x.yaml", yaml.safe_dump(recipe))
    assert any(f"x.yaml: {key} " in problem for problem in failed.value.problems), failed.value.problems


@pytest.mark.parametrize("source, key", [
    ({"id": "w", "wheel": "onnxruntime>=1.21", "platform": "manylinux_2_27_aarch64"}, "sources[0].wheel"),
    ({"id": "w", "wheel": "onnxruntime==1.21.1"}, "sources[0].platform"),
])
def test_wheel_sources_need_an_exact_version_and_a_platform(tmp_path: Path, source, key):
    recipe = {"name": "x", "version": "1", "toolchains": ["debian-arm64"], "sources": [source],
              "build": {"system": "copy"}, "outputs": ["lib/libx.so"]}
    file = tmp_path / "x.yaml"
    with pytest.raises(ValidationFailed) as failed:
        parse_recipe(file, yaml.safe_dump(recipe))
    assert any(f"x.yaml: {key} " in problem for problem in failed.value.problems), failed.value.problems


def test_elk_sdk_tflite_recipe_carries_the_published_fixes():
    tflite = select(load_recipes([BUILTIN_RECIPES]), "elk-sdk-1.0.0", only="tflite")[0]
    assert tflite.version == "2.11.0"
    assert tflite.sources[0].url.endswith("/v2.11.0.tar.gz")
    # Nobody could verify the digest where the recipe was written: it must say so.
    assert tflite.sources[0].sha256 == "unknown" and not tflite.sources[0].pinned
    assert ("TFLITE_ENABLE_XNNPACK", "OFF") in tflite.build.options
    assert tflite.build.system_processor == "aarch64"
    assert "-Wno-psabi" in tflite.build.cflags
    assert {"-O3", "-pipe", "-ffast-math", "-feliminate-unused-debug-types", "-funroll-loops",
            "-mcpu=cortex-a72", "-mtune=cortex-a72"} <= set(tflite.build.cxxflags)
    assert tflite.patch_files()[0].name == "flatbuffers-v2.0.8.patch"
    assert set(tflite.fetchcontent.contents) == {"abseil-cpp", "eigen", "farmhash", "fft2d", "flatbuffers",
                                                 "gemmlowp", "neon2sse", "ruy", "cpuinfo"}


def test_from_source_variant_is_preferred_only_when_asked():
    recipes = load_recipes([BUILTIN_RECIPES])
    assert select(recipes, "debian-arm64", only="onnxruntime")[0].build.system == "copy"
    assert select(recipes, "debian-arm64", only="onnxruntime", variant="source")[0].build.system == "cmake"


def test_unknown_only_names_the_choices():
    with pytest.raises(UsageError) as info:
        select(load_recipes([BUILTIN_RECIPES]), "debian-arm64", only="tensorflow")
    assert "onnxruntime, tflite" in info.value.one_line()


def test_bad_recipe_lists_every_problem_with_file_and_field(tmp_path: Path):
    file = tmp_path / "recipes" / "broken.yaml"
    file.parent.mkdir()
    file.write_text(
        "name: Bad Name\nversion: 1\ntoolchains: [debian-arm64]\n"
        "sources:\n  - {id: a, url: 'file:///x.tgz', sha256: 1234}\n  - {id: b, deb: x, git: y}\n"
        "build: {system: meson}\noutputs: []\nflavour: spicy\n")
    with pytest.raises(ValidationFailed) as info:
        load_recipe(file)
    problems = "\n".join(info.value.problems)
    assert all(line.startswith(str(file)) for line in info.value.problems)
    for expected in ("name is 'Bad Name'", "sources[0].sha256 is 1234", "sources[1]",
                     "build.system is 'meson'", "outputs", "flavour is 'spicy'; unknown field"):
        assert expected in problems, expected


def test_recipe_that_is_not_yaml_names_the_line(tmp_path: Path):
    file = tmp_path / "bad.yaml"
    file.write_text("name: x\nversion: [1\n")
    with pytest.raises(ConfigError) as info:
        load_recipe(file)
    assert str(file) in info.value.one_line() and "line" in info.value.one_line()


def test_missing_patch_is_a_recipe_error(tmp_path: Path):
    file = tmp_path / "recipes" / "p.yaml"
    file.parent.mkdir()
    file.write_text("name: p\nversion: '1'\ntoolchains: ['*']\nsources: [{id: s, path: src}]\n"
                    "patches: [nope/missing.patch]\nbuild: {system: copy}\noutputs: [include/p.h]\n")
    with pytest.raises(ValidationFailed) as info:
        load_recipe(file)
    assert "patches[0] is 'nope/missing.patch'" in info.value.problems[0]
