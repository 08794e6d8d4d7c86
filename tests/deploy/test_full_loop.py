"""The first full loop, on real parts only: the ONNX example plugin cross-built for
aarch64 in the debian-arm64 container (`invoke build`), deployed with its rig to
the emulated Elk board (`invoke deploy`), run there by the board's Sushi in offline
mode, where the deployed binaries really load under qemu; the board's output must
match onnxruntime's Python output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import onnx_reference
from cli_helpers import run_task
from deploy.helpers import cache_env, either_board, project_file, sushi_offline  # noqa: F401 (a fixture)
from plugin.delayed import delayed_error

from elkbuild.bundle.abi_gate import require_deployable
from elkbuild.build.profiles import get_board_profile
from elkbuild.config import load_config
from elkbuild.elf import read_elf, version_key
from elkbuild.plugin.cross_build import build_plugin
from elkbuild.build.toolchains import get_toolchain

REPO = Path(__file__).resolve().parents[2]
PLUGIN = "NeuralSaturator"
RATE = 48000

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory, debian_arm64_image, elkbuild_cache) -> Path:
    """A project of its own: the example plugin and rig, and nothing built yet."""
    root = tmp_path_factory.mktemp("loop")
    shutil.copytree(REPO / "plugins" / PLUGIN, root / "plugins" / PLUGIN)
    (root / "sushi-configs").mkdir()
    shutil.copy2(REPO / "sushi-configs" / "neural-mono.yaml", root / "sushi-configs")
    return root


@pytest.fixture(scope="module")
def built(project: Path, elkbuild_cache: Path) -> dict:
    done = run_task("build", "--plugin", PLUGIN, "--json", project=project,
                    env=cache_env(elkbuild_cache), timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = [json.loads(line) for line in done.stdout.splitlines()]
    return result


def test_build_makes_a_deployable_aarch64_bundle(built: dict, project: Path):
    # Gated against both real Elk lines (0.11: glibc 2.31, libstdc++ 3.4.28; 1.x: 2.35,
    # 3.4.29), not just the emulated board: bullseye's cross GCC and static libstdc++.
    assert built["status"] == "built" and built["board_profiles"] == ["elk-0.11", "elk-1.x"]
    bundle = Path(built["bundle"])
    assert bundle == project / "build" / "bundles" / "debian-arm64" / f"{PLUGIN}.vst3"
    folder = bundle / "Contents" / "aarch64-linux"
    binary = read_elf(folder / f"{PLUGIN}.so")
    assert binary.machine == "EM_AARCH64" and binary.runpath == ("$ORIGIN",)
    # Every library the plugin needs beyond the board's own travels with it,
    # found by walking DT_NEEDED: the engine, and what Debian's JUCE links in.
    assert {"libonnxruntime.so.1", "libpng16.so.16", "libfreetype.so.6"} <= \
        {p.name for p in folder.iterdir()}
    assert not [n for n in binary.needed if n.startswith(("libX11", "libcurl", "libgtk"))]
    assert (bundle / "Contents" / "Resources" / "saturator.onnx").is_file()
    for profile in ("elk-0.11", "elk-1.x", "emulated"):
        require_deployable(bundle, get_board_profile(profile))  # raises on any problem
    # Elk 0.11's glibc is the floor of everything the bundle carries: the plugin, the
    # engine and the libraries taken from the sysroot. bookworm's cross libc (2.36)
    # would put GLIBC_2.34+ into the plugin.
    glibc = [read_elf(path).highest_needed("GLIBC") for path in sorted(folder.iterdir())]
    assert all(glibc) and max(glibc, key=version_key) == "2.30", glibc
    assert version_key(max(glibc, key=version_key)) <= version_key("2.31")
    assert read_elf(folder / f"{PLUGIN}.so").highest_needed("GLIBCXX") is None  # static libstdc++


def test_unchanged_build_is_a_no_op_that_starts_no_container(built: dict, project: Path,
                                                              elkbuild_cache: Path):
    cfg = load_config(project, {"cache_dir": str(elkbuild_cache)})
    toolchain = get_toolchain("debian-arm64", cfg)

    def no_container():
        raise AssertionError("an up-to-date build must not start the container")

    def engine_prefix(name: str) -> Path:
        return project / "build" / "deps" / "debian-arm64" / f"{name}-1.21.1"

    again = build_plugin(project / "plugins" / PLUGIN, cfg=cfg, toolchain=toolchain,
                         make_executor=no_container, stage_engine=engine_prefix)
    assert again.status == "up to date" and again.bundle.path == Path(built["bundle"])

    task = run_task("build", "--plugin", PLUGIN, project=project, env=cache_env(elkbuild_cache))
    assert task.returncode == 0 and f"{PLUGIN}: up to date" in task.stdout, task.stderr


def test_a_bundle_that_fails_the_gate_never_replaces_the_deployable_one(built: dict, project: Path,
                                                                       elkbuild_cache: Path):
    bundle = Path(built["bundle"])
    binary = bundle / "Contents" / "aarch64-linux" / f"{PLUGIN}.so"
    before = binary.read_bytes()
    # A module that hides its VST3 entry points (a version script making every symbol
    # local) builds, but Sushi could not load it: the gate refuses it.
    cmakelists = project / "plugins" / PLUGIN / "CMakeLists.txt"
    original = cmakelists.read_text()
    (cmakelists.parent / "hide-all.map").write_text("{ local: *; };\n")
    cmakelists.write_text(original + f"target_link_options({PLUGIN}_VST3 PRIVATE "
                          "-Wl,--version-script=${CMAKE_CURRENT_SOURCE_DIR}/hide-all.map)\n")
    try:
        refused = run_task("build", "--plugin", PLUGIN, project=project,
                           env=cache_env(elkbuild_cache), timeout=600)
    finally:
        cmakelists.write_text(original)
        (cmakelists.parent / "hide-all.map").unlink()
    assert refused.returncode == 1, refused.stderr
    assert "Traceback" not in refused.stderr
    assert "cannot run on the elk-0.11 board" in refused.stderr
    assert "does not export the function GetPluginFactory" in refused.stderr
    assert binary.read_bytes() == before
    assert sorted(p.name for p in bundle.parent.iterdir() if p.is_dir()) == [f"{PLUGIN}.vst3"]
    again = run_task("build", "--plugin", PLUGIN, project=project, env=cache_env(elkbuild_cache))
    assert again.returncode == 0 and f"{PLUGIN}: up to date" in again.stdout, again.stderr


def test_deployed_plugin_processes_audio_on_the_board_like_onnxruntime(
        built: dict, project: Path, either_board, elkbuild_cache: Path, tmp_path: Path):  # noqa: F811
    board = either_board
    project_file(board, project)
    done = run_task("deploy", "--board", "emu", "--plugin", PLUGIN, "--rig", "neural-mono",
                    "--json", "--no-progress", project=project, env=cache_env(elkbuild_cache),
                    timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    rng = np.random.default_rng(5)
    audio = (rng.uniform(-1, 1, (1, 4800)) * np.linspace(0.05, 1.5, 4800)).astype(np.float32)
    out, latency = sushi_offline(board, "neural-mono.json", audio, RATE)
    expected = onnx_reference(project / "plugins" / PLUGIN / "model" / "saturator.onnx", audio, 64)
    # elkrt streams 64-sample frames over blocks of any size (63 samples), plus whole
    # blocks of inference time on its worker pool: the output must line up exactly at
    # the latency the plugin reports
    assert latency >= 63, latency
    error = delayed_error(out, expected, latency)
    print(f"board output vs onnxruntime: latency {latency}, max error {error:.2e}")
    assert error < 1e-5
    assert np.max(np.abs(out - audio)) > 0.1  # the model really ran: saturation is audible


def test_a_changed_model_goes_to_the_emulated_board_by_name(
        built: dict, project: Path, fresh_emulated_board, elkbuild_cache: Path):
    """The README's step after the demo: change the model, build, deploy to the board
    named emulated, monitor it; no known_hosts, key or trust flag given."""
    import hashlib

    import onnx

    board = fresh_emulated_board
    assert not (project / "elkbuild.yaml").exists() or "emulated" not in \
        (project / "elkbuild.yaml").read_text()
    model = project / "plugins" / PLUGIN / "model" / "saturator.onnx"
    proto = onnx.load(str(model))
    proto.doc_string = "retrained"  # new bytes, the same maths
    onnx.save(proto, str(model))
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    env = cache_env(elkbuild_cache)

    build = run_task("build", "--plugin", PLUGIN, "--json", project=project, env=env, timeout=1800)
    assert build.returncode == 0, build.stderr[-3000:]
    assert json.loads(build.stdout.splitlines()[-1])["status"] == "built"
    name = f"emulated:{board.name}"
    deploy = run_task("deploy", "--board", name, "--plugin", PLUGIN, "--rig", "neural-mono",
                      "--json", "--no-progress", project=project, env=env, timeout=300)
    assert deploy.returncode == 0, deploy.stderr[-3000:]
    (result,) = json.loads(deploy.stdout.splitlines()[-1])["boards"]
    assert result["ok"] and result["abi_gate"] == f"ABI gate elk-1.x passed ({PLUGIN}.vst3)"
    manifest = json.loads(board.path("/udata/elkbuild/current/manifest.json").read_text())
    assert manifest["files"][f"plugins/{PLUGIN}.vst3/Contents/Resources/saturator.onnx"][
        "sha256"] == digest
    watched = run_task("monitor", "--board", name, "--duration", "2", "--json",
                       project=project, env=env, timeout=120)
    assert watched.returncode == 0, watched.stderr[-3000:]
    assert any("threads" in line for line in watched.stdout.splitlines())
    run_task("stop", "--board", name, project=project, env=env)
