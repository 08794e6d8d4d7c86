"""build-deps and fetch-sources as a user runs them: exit codes, one-line errors, JSON."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import assert_one_line_error, run_task
from deps_helpers import make_tarball, sha256_of, write_recipe


def test_unknown_dependency_is_a_usage_error(tmp_path: Path):
    result = run_task("build-deps", "--toolchain", "debian-arm64", "--only", "tensorflow",
                      project=tmp_path, env={"ELKBUILD_CACHE": str(tmp_path / "cache")})
    assert_one_line_error(result, "--only 'tensorflow'", "onnxruntime, tflite", code=2)


def test_negative_jobs_is_a_usage_error(tmp_path: Path):
    result = run_task("build-deps", "--jobs", "-3", project=tmp_path,
                      env={"ELKBUILD_CACHE": str(tmp_path / "cache")})
    assert_one_line_error(result, "--jobs -3", code=2)


def test_offline_lists_each_missing_source_and_changes_nothing(tmp_path: Path):
    result = run_task("build-deps", "--toolchain", "elk-sdk-1.0.0", "--offline", project=tmp_path,
                      env={"ELKBUILD_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("elkbuild: error: offline build: sources missing from the cache: 2 problems")
    assert any("onnxruntime-1.21.1: release https://github.com/microsoft/onnxruntime/releases/download/"
               "v1.21.1/onnxruntime-linux-aarch64-1.21.1.tgz (sha256 not pinned yet)" in line for line in lines)
    assert any("tflite-2.11.0: tensorflow https://github.com/tensorflow/tensorflow/archive/refs/tags/"
               "v2.11.0.tar.gz (sha256 not pinned yet)" in line for line in lines)
    assert not (tmp_path / "build").exists()
    assert not (tmp_path / "elkbuild-deps.lock.yaml").exists()


def test_project_recipe_build_then_up_to_date_as_json(tmp_path: Path):
    tarball = make_tarball(tmp_path / "up" / "hdr-2.0.tar.gz", {"include/hdr.h": "#define HDR 2\n"}, "hdr-2.0")
    write_recipe(tmp_path / "deps" / "recipes", "hdr",
                 f"name: hdr\nversion: '2.0'\ntoolchains: [debian-arm64]\n"
                 f"sources: [{{id: main, url: '{tarball.as_uri()}', sha256: '{sha256_of(tarball)}'}}]\n"
                 "build: {system: copy}\ninstall: [{from: source, glob: 'include/*.h', to: include}]\n"
                 "outputs: [include/hdr.h]\n")
    env = {"ELKBUILD_CACHE": str(tmp_path / "cache")}
    first = run_task("build-deps", "--toolchain", "debian-arm64", "--only", "hdr", "--json",
                     project=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    (doc,) = [json.loads(line) for line in first.stdout.splitlines()]
    assert doc["status"] == "built" and doc["changed"] == ["no staged prefix yet"]
    second = run_task("build-deps", "--toolchain", "debian-arm64", "--only", "hdr",
                      project=tmp_path, env=env)
    assert second.returncode == 0
    assert second.stdout.strip() == f"hdr 2.0: up to date ({tmp_path}/build/deps/debian-arm64/hdr-2.0)"


def test_bad_project_recipe_names_file_and_field(tmp_path: Path):
    write_recipe(tmp_path / "deps" / "recipes", "bad",
                 "name: bad\nversion: '1'\ntoolchains: [debian-arm64]\nsources: [{id: s, deb: x, suite: sid}]\n"
                 "build: {system: debian, options: 3}\noutputs: [lib/x.so]\n")
    result = run_task("build-deps", project=tmp_path, env={"ELKBUILD_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert "bad.yaml: 1 problem" in lines[0]
    assert lines[1].strip() == (f"{tmp_path}/deps/recipes/bad.yaml: build.options is 3; "
                                "expected a mapping of CMake cache variables to values")


def test_fetch_sources_pins_on_first_use_only_when_allowed(tmp_path: Path):
    tarball = make_tarball(tmp_path / "up" / "raw-0.1.tar.gz", {"include/raw.h": "\n"}, "raw-0.1")
    write_recipe(tmp_path / "deps" / "recipes", "raw",
                 f"name: raw\nversion: '0.1'\ntoolchains: [debian-arm64]\n"
                 f"sources: [{{id: main, url: '{tarball.as_uri()}', sha256: unknown}}]\n"
                 "build: {system: copy}\noutputs: [include/raw.h]\n"
                 "install: [{from: source, glob: 'include/*.h', to: include}]\n")
    env = {"ELKBUILD_CACHE": str(tmp_path / "cache")}
    refused = run_task("fetch-sources", "--toolchain", "debian-arm64", "--only", "raw", project=tmp_path, env=env)
    assert_one_line_error(refused, "raw-0.1: main", "has no verified sha256", "--allow-unpinned")
    pinned = run_task("fetch-sources", "--toolchain", "debian-arm64", "--only", "raw", "--allow-unpinned",
                      "--json", project=tmp_path, env=env)
    assert pinned.returncode == 0, pinned.stderr
    doc = json.loads(pinned.stdout)
    assert doc["fetched"] == ["raw-0.1: main"]
    assert doc["pinned"] == [f"{tarball.as_uri()} sha256={sha256_of(tarball)}"]
    again = run_task("fetch-sources", "--toolchain", "debian-arm64", "--only", "raw", "--json",
                     project=tmp_path, env=env)
    assert json.loads(again.stdout) == {"cached": ["raw-0.1: main"], "fetched": [], "pinned": []}
