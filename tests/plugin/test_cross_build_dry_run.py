"""build --dry-run: the commands of every stage (deps, JUCE, CMake) are printed, nothing is written."""

from __future__ import annotations

import shutil
from pathlib import Path

from cli_helpers import REPO, run_task

PLUGIN = "NeuralSaturator"


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under root with its mtime and size: any write shows up."""
    return {str(p.relative_to(root)): (p.lstat().st_mtime_ns, p.lstat().st_size)
            for p in sorted(root.rglob("*"))}


def test_dry_run_prints_cmake_and_compiler_commands_and_changes_nothing(tmp_path: Path):
    project, cache = tmp_path / "project", tmp_path / "cache"
    shutil.copytree(REPO / "plugins" / PLUGIN, project / "plugins" / PLUGIN)
    cache.mkdir()
    before = snapshot(tmp_path)
    done = run_task("build", "--plugin", PLUGIN, "--dry-run", project=project,
                    env={"ELKBUILD_CACHE": str(cache)})
    assert done.returncode == 0, done.stderr
    build_dir = project / "build" / "plugins" / "debian-arm64" / PLUGIN
    bundle = project / "build" / "bundles" / "debian-arm64" / f"{PLUGIN}.vst3"
    assert done.stdout.strip() == f"{PLUGIN}: would build (no bundle yet) -> {bundle}"
    text = done.stderr.replace("\n", "")
    assert "onnxruntime-1.21.1 (debian-arm64): would build, because: no staged prefix yet" in text
    assert "[container:debian-arm64] would run: cp -R /usr/share/juce/modules" in text
    assert (f"[container:debian-arm64] would run: cmake -S {project}/plugins/{PLUGIN} "
            f"-B {build_dir} -G Ninja -DCMAKE_TOOLCHAIN_FILE={cache}/toolchains/debian-arm64-") in text
    assert f"-DELKBUILD_MODEL={project}/plugins/{PLUGIN}/model/saturator.onnx" in text
    assert (f"would run: cmake --build {build_dir} --target {PLUGIN}_VST3 --parallel 2") in text
    assert f"would assemble {bundle}" in text
    assert snapshot(tmp_path) == before
