"""The streaming examples on the board, on real parts only: LstmAmp (LSTM state
carried), WaveNetAmp (receptive field 4093, frames of 2048) and GruFrame576 (frames of
576, packed state, an int64 constant), and the LSTM amp trained at 44.1 kHz
converting rates with libsamplerate (LstmAmp44k, `new-plugin --sample-rate 44100
--resample medium`, libsamplerate.so.0 bundled), cross-built for aarch64 in one `invoke build`,
each deployed with a rig (stereo; WaveNetAmp mono) to the emulated Elk board and run there by the board's
Sushi in offline mode (ONNX Runtime on elkrt's worker pool, under qemu as a
Cortex-A72). The output must equal the model's streaming reference in Python
(tests/runtime/model_references.py, per channel) delayed by the latency the plugins
report, to 1e-5 (for LstmAmp44k: the chain converted by libsamplerate's Python binding,
tests/runtime/model_references.converted_reference); shifted by one sample it must not.

Costs: the build about 2 min warm (JUCE's objects are shared, ccache); each deploy and
two offline runs 10-20 s, WaveNetAmp's about 90 s (ONNX Runtime's convolutions under
qemu take about a second per 2048 samples; it runs one lane)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_task
from deploy.helpers import cache_env, cross_build, project_file, sushi_offline
from plugin.delayed import delayed_error

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "runtime"))
from model_references import MODELS, converted_reference, streaming_reference  # noqa: E402

from elkbuild.plugin.render import NewPlugin, new_plugin  # noqa: E402
from elkbuild.plugin.roles import RoleFlags  # noqa: E402

RATE = 48000
SECONDS = 1.5
# plugin project: (model in tests/runtime/models, model frame)
EXAMPLES = {"LstmAmp": ("lstm_amp", 64), "WaveNetAmp": ("wavenet", 2048), "GruFrame576": ("gru_frame576", 576),
            "LstmAmp44k": ("lstm_amp", 64)}
CONVERTING = {"LstmAmp44k": 44100}   # plugin: the rate its model was trained at
STEREO = """description: {plugin} on a stereo pair.
host:
  samplerate: 48000
tracks:
  - name: main
    channels: 2
    inputs: [{{engine_bus: 0}}]
    outputs: [{{engine_bus: 0}}]
    plugins:
      - project: {plugin}
"""
MONO = """description: {plugin} on one channel.
host:
  samplerate: 48000
tracks:
  - name: main
    channels: 1
    inputs: [0]
    outputs: [{{engine_channel: 0, track_channel: 0}}]
    plugins:
      - project: {plugin}
"""
# Under qemu one WaveNet run (2048 samples out, 6140 in) takes about a second, and its
# measured budget makes the latency about two: one lane, and a signal that long.
ONE_LANE = {"WaveNetAmp"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory, debian_arm64_image, elkbuild_cache) -> Path:
    """A project of its own: the three examples and a rig each, nothing built."""
    root = tmp_path_factory.mktemp("streaming-board")
    (root / "sushi-configs").mkdir()
    for plugin in EXAMPLES:
        if plugin in CONVERTING:
            new_plugin(NewPlugin(plugin, "onnx", "effect", MODELS / "lstm_amp.onnx", resample="medium",
                                 roles=RoleFlags(sample_rate=CONVERTING[plugin])), root / "plugins")
        else:
            shutil.copytree(REPO / "plugins" / plugin, root / "plugins" / plugin)
        rig = MONO if plugin in ONE_LANE else STEREO
        (root / "sushi-configs" / f"{plugin.lower()}.yaml").write_text(rig.format(plugin=plugin))
    return root


@pytest.fixture(scope="module")
def built(project: Path, elkbuild_cache: Path) -> dict[str, dict]:
    return cross_build(project, EXAMPLES, elkbuild_cache)


@pytest.mark.parametrize("plugin", list(EXAMPLES))
def test_streaming_example_on_the_board_equals_its_streaming_reference(
        built: dict, project: Path, emulated_board_0_11, elkbuild_cache: Path, plugin: str):
    # Elk 0.11's board (glibc 2.31) is the stricter of the two lines; the bundle is the same for 1.x.
    assert built[plugin]["status"] == "built" and built[plugin]["board_profiles"] == ["elk-0.11", "elk-1.x"]
    if plugin in CONVERTING:
        # Not on an Elk image's list of system libraries: it travels in the bundle.
        folder = Path(built[plugin]["bundle"]) / "Contents" / "aarch64-linux"
        assert (folder / "libsamplerate.so.0").is_file(), sorted(p.name for p in folder.iterdir())
    board = emulated_board_0_11
    project_file(board, project)
    done = run_task("deploy", "--board", "emu", "--plugin", plugin, "--rig", plugin.lower(),
                    "--json", "--no-progress", project=project, env=cache_env(elkbuild_cache), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    model, frame = EXAMPLES[plugin]
    config, lanes = f"{plugin.lower()}.json", 1 if plugin in ONE_LANE else 2
    # The latency comes from the inference time measured on the board: a short first
    # run tells it, so the signal is long enough for a few frames after it (the
    # measurement, and with it the latency, may come out a little longer the second time).
    _, probed = sushi_offline(board, config, np.zeros((lanes, 4096), np.float32), RATE)
    frames = max(int(SECONDS * RATE), probed + probed // 4 + 3 * frame + 4096)
    rng = np.random.default_rng(len(plugin))
    audio = (rng.uniform(-1.0, 1.0, (lanes, frames)) * np.linspace(0.05, 1.0, frames)).astype(np.float32)
    out, latency = sushi_offline(board, config, audio, RATE)
    print(f"{plugin}: {frames} samples, latency {latency} (first run {probed})")
    assert latency + 2 * frame + 3000 < frames, f"latency {latency} leaves too little of {frames} samples"
    if plugin in CONVERTING:
        # From the latency on: before it come the converters' pre-echo of the signal's start.
        compared = frames - 3000 - latency
        expected = converted_reference(model, audio, RATE, CONVERTING[plugin])[:, :compared]
        heard = out[:, latency:latency + compared]
        error = float(np.max(np.abs(heard - expected)))
        shifted = float(np.max(np.abs(out[:, latency + 1:latency + 1 + compared] - expected)))
    else:
        # Sushi's chunk is 64 samples; ONNX Runtime runs on the worker: frame - 1 and whole chunks.
        assert latency >= frame - 1 + 64 and (latency - (frame - 1)) % 64 == 0, latency
        expected = streaming_reference(model, audio)
        compared = min(frames, latency + frames // frame * frame)
        error = delayed_error(out[:, :compared], expected[:, :compared], latency)
        shifted = delayed_error(out[:, :compared], expected[:, :compared], latency + 1)
    print(f"{plugin} on the board: latency {latency}, max error vs reference {error:.3g}")
    assert error < 1e-5
    assert shifted > 1e-3
    assert np.max(np.abs(out - audio)) > 0.01


def test_a_bundle_without_its_model_data_is_refused_before_anything_is_sent(
        built: dict, project: Path, emulated_board_0_11, elkbuild_cache: Path, tmp_path: Path):
    """WaveNetAmp's weights live in wavenet.onnx.data (torch's default layout). Without
    it the plugin refuses to activate, and Sushi runs on without a word (it ignores
    setActive's answer): the deploy's gate refuses such a bundle, and the board keeps
    what it had."""
    board = emulated_board_0_11
    project_file(board, project)
    broken = tmp_path / "WaveNetAmp.vst3"
    shutil.copytree(built["WaveNetAmp"]["bundle"], broken, symlinks=True)
    (broken / "Contents" / "Resources" / "wavenet.onnx.data").unlink()
    before = board.run(["sh", "-c", "readlink /home/mind/plugins; ls -R /home/mind/plugins/ 2>/dev/null"]).stdout
    done = run_task("deploy", "--board", "emu", "--plugin", str(broken), "--rig", "wavenetamp",
                    "--no-progress", project=project, env=cache_env(elkbuild_cache), timeout=600)
    assert done.returncode != 0
    assert_one_line_error(done, "WaveNetAmp.vst3 cannot run on board emu", "nothing was sent",
                          "wavenet.onnx.data, which is not beside the model", "invoke build")
    after = board.run(["sh", "-c", "readlink /home/mind/plugins; ls -R /home/mind/plugins/ 2>/dev/null"]).stdout
    assert after == before
