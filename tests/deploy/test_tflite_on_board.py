"""TFLite plugins for the board, on real parts only: the TFLite example (OnsetClassifier)
and a TFLite saturator effect are cross-built with the default debian-arm64 toolchain
(`elk build`), which links LiteRT's C API library and bundles it (RUNPATH $ORIGIN);
both pass the gates of both Elk lines (0.11: glibc 2.31; 1.x: 2.35). The saturator is deployed with a rig to the emulated
board and run there by Sushi in offline mode: its output must match the LiteRT
Python interpreter's."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import tflite_reference
from cli_helpers import run_task
from deploy.helpers import cache_env, cross_build, either_board, project_file, sushi_offline  # noqa: F401 (a fixture)
from plugin.delayed import delayed_error

from elkbuild.build.profiles import get_board_profile
from elkbuild.bundle.abi_gate import require_deployable
from elkbuild.digests import sha256_file
from elkbuild.elf import read_elf
from elkbuild.plugin.example_models import saturator_tflite_bytes
from elkbuild.plugin.render import NewPlugin, new_plugin

REPO = Path(__file__).resolve().parents[2]
PLUGINS = ("OnsetClassifier", "TfliteSaturator")
LITERT = "libLiteRtRuntimeCApi.so"
LITERT_SHA256 = "23781d014a0e0de4f8dd40553e558e5f1248e29b1d135edeb187894588fd8d33"
FRAME = 64
RATE = 48000
RIG = """description: The TFLite saturator on a mono input, played on both outputs.
host:
  samplerate: 48000
tracks:
  - name: main
    channels: 1
    inputs: [0]
    outputs:
      - {engine_channel: 0, track_channel: 0}
      - {engine_channel: 1, track_channel: 0}
    plugins:
      - project: TfliteSaturator
"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory, debian_arm64_image, elkbuild_cache) -> Path:
    """A project of its own: the TFLite example, a TFLite effect and its rig, nothing built."""
    root = tmp_path_factory.mktemp("tflite-board")
    shutil.copytree(REPO / "plugins" / "OnsetClassifier", root / "plugins" / "OnsetClassifier")
    model = root / "models" / "saturator.tflite"
    model.parent.mkdir()
    model.write_bytes(saturator_tflite_bytes(frame=FRAME))
    new_plugin(NewPlugin("TfliteSaturator", "tflite", "effect", model), root / "plugins")
    (root / "sushi-configs").mkdir()
    (root / "sushi-configs" / "tflite-mono.yaml").write_text(RIG)
    return root


@pytest.fixture(scope="module")
def built(project: Path, elkbuild_cache: Path) -> dict[str, dict]:
    return cross_build(project, PLUGINS, elkbuild_cache)


@pytest.mark.parametrize("plugin", PLUGINS)
def test_tflite_plugin_bundles_litert_and_passes_both_elk_gates(built: dict, plugin: str):
    result = built[plugin]
    assert result["status"] == "built" and result["board_profiles"] == ["elk-0.11", "elk-1.x"]
    folder = Path(result["bundle"]) / "Contents" / "aarch64-linux"
    binary = read_elf(folder / f"{plugin}.so")
    assert binary is not None and binary.machine == "EM_AARCH64"
    assert LITERT in binary.needed and binary.runpath == ("$ORIGIN",)
    assert sha256_file(folder / LITERT) == LITERT_SHA256
    assert not list(folder.glob("libtensorflow-lite*"))
    for file in sorted(folder.iterdir()):
        elf = read_elf(file)
        print(f"{plugin}: {file.name}: GLIBC {elf.highest_needed('GLIBC')}, "
              f"GLIBCXX {elf.highest_needed('GLIBCXX')}")
    engine = read_elf(folder / LITERT)
    assert engine.highest_needed("GLIBC") == "2.30" and engine.highest_needed("GLIBCXX") == "3.4.26"
    for profile in ("elk-0.11", "elk-1.x", "emulated"):
        require_deployable(Path(result["bundle"]), get_board_profile(profile))  # raises on a problem


def test_tflite_saturator_on_the_board_matches_the_litert_interpreter(
        built: dict, project: Path, either_board, elkbuild_cache: Path):  # noqa: F811
    board = either_board
    project_file(board, project)
    done = run_task("deploy", "--board", "emu", "--plugin", "TfliteSaturator", "--rig", "tflite-mono",
                    "--json", "--no-progress", project=project, env=cache_env(elkbuild_cache), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    rng = np.random.default_rng(11)
    audio = (rng.uniform(-1, 1, (1, 4800)) * np.linspace(0.05, 1.5, 4800)).astype(np.float32)
    out, latency = sushi_offline(board, "tflite-mono.json", audio, RATE)
    expected = tflite_reference(project / "plugins" / "TfliteSaturator" / "model" / "saturator.tflite",
                                audio, FRAME)
    # inline (TFLite is real-time safe) 63 samples; the output must line up exactly there
    assert latency >= FRAME - 1, latency
    error = delayed_error(out, expected, latency)
    print(f"board output vs the LiteRT interpreter: latency {latency}, max error {error:.2e}")
    assert error < 1e-5
    assert np.max(np.abs(out - audio)) > 0.1  # the model really ran: it saturates
