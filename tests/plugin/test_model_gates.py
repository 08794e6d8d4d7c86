"""Gates that fail, with real builds: a model whose weights live in MODEL.onnx.data
(torch's default export) travels into the project and the bundle and loads from
there; a bundle missing its model or its .onnx.data refuses to activate (the host
sees setActive fail, with the plugin's reason), and so does one missing the roles
of its tensors (plugin.yaml's model_roles, Resources/MODEL.roles); a model too slow for the block,
forced inline, fails rt-check's deadline verdict; the same model decoupled keeps
the audio thread fast, and fails on its worker's report instead.

One plugin build (SlowChain: 100 chained 512x512 matmuls, weights external, mode
inline) serves most tests here: ~1.5-3 min cold, seconds when warm; its decoupled
twin (SlowChainDecoupled) reuses JUCE's objects: ~40 s more cold."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import read_wav, write_wav
from delayed import delayed_error
from native_fixtures import require_native_build_tools

from elkbuild.bundle.layout import BundleLayout
from elkbuild.config import load_config
from elkbuild.errors import BuildError
from elkbuild.executor import LocalExecutor
from elkbuild.plugin.models import ModelError
from elkbuild.plugin.native_build import NativeBuild, build_native
from elkbuild.plugin.render import NewPlugin, new_plugin
from elkbuild.vst3host.rt_check import format_report, rt_check
from elkbuild.vst3host.run import process_file

REPO = Path(__file__).resolve().parents[2]
SAMPLE_RATE = 48000
FRAME = 64


def slow_chain_model(path: Path, chain: int = 100, width: int = 512, seed: int = 0) -> Path:
    """[1, 64] -> [1, 64] through `chain` tanh(x @ W) layers (W orthogonal, so the
    signal neither dies nor explodes); every weight in path.onnx.data."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = {"A": rng.standard_normal((FRAME, width)) / 8,
               "W": np.linalg.qr(rng.standard_normal((width, width)))[0],
               "B": rng.standard_normal((width, FRAME)) / np.sqrt(width)}
    nodes = [helper.make_node("MatMul", ["audio", "A"], ["h0"])]
    for i in range(chain):
        nodes += [helper.make_node("MatMul", [f"h{i}", "W"], [f"m{i}"]),
                  helper.make_node("Tanh", [f"m{i}"], [f"h{i + 1}"])]
    nodes.append(helper.make_node("MatMul", [f"h{chain}", "B"], ["out"]))
    graph = helper.make_graph(
        nodes, "slow_chain", [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, FRAME])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, FRAME])],
        [numpy_helper.from_array(w.astype(np.float32), name) for name, w in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location=path.name + ".data", size_threshold=0)
    return path


def _frames_reference(model: Path, audio: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    out = np.zeros_like(audio)
    for channel in range(audio.shape[0]):
        for start in range(0, audio.shape[1] - FRAME + 1, FRAME):
            out[channel, start:start + FRAME] = session.run(
                None, {"audio": audio[channel, start:start + FRAME].reshape(1, FRAME)})[0].ravel()
    return out


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return slow_chain_model(tmp_path_factory.mktemp("models") / "chain.onnx")


# ---- no build ----------------------------------------------------------------------

def test_new_plugin_copies_the_external_data_beside_the_model(tmp_path, model):
    project = new_plugin(NewPlugin("Chain", "onnx", "effect", model, mode="inline"), tmp_path)
    assert [p.name for p in project.model_data] == ["chain.onnx.data"]
    assert (project.root / "model" / "chain.onnx.data").read_bytes() == \
        model.with_name("chain.onnx.data").read_bytes()
    assert project.mode == "inline" and "mode: inline" in (project.root / "plugin.yaml").read_text()
    assert "ExecutionMode::Inline" in (project.root / "Source" / "PluginProcessor.cpp").read_text()
    # Rendered again without --mode, the project keeps the mode its plugin.yaml says.
    again = new_plugin(NewPlugin("Chain", "onnx", "effect", model), tmp_path, force=True)
    assert again.mode == "inline"


def test_new_plugin_refuses_a_model_whose_data_file_is_missing(tmp_path, model):
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copyfile(model, alone / model.name)
    with pytest.raises(ModelError) as caught:
        new_plugin(NewPlugin("Chain", "onnx", "effect", alone / model.name), tmp_path / "plugins")
    line = caught.value.one_line()
    assert "initializer 'A' keeps its data in chain.onnx.data" in line and "copy chain.onnx.data" in line
    assert not (tmp_path / "plugins" / "Chain").exists()


# ---- one build ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def chain_build(model: Path) -> NativeBuild:
    require_native_build_tools()
    cache = load_config(REPO).cache_dir
    # At a fixed place in the cache so the build folder (and JUCE's objects) is reused.
    projects = cache / "test-builds" / "gate-projects"
    project = new_plugin(NewPlugin("SlowChain", "onnx", "effect", model, mode="inline"), projects,
                         force=True)
    built = build_native(project.root, LocalExecutor(), cache, cache / "test-builds", jobs=2)
    print(f"SlowChain built in {built.seconds:.1f} s")
    return built


@pytest.fixture(scope="module")
def decoupled_chain_build(model: Path) -> NativeBuild:
    require_native_build_tools()
    cache = load_config(REPO).cache_dir
    projects = cache / "test-builds" / "gate-projects"
    project = new_plugin(NewPlugin("SlowChainDecoupled", "onnx", "effect", model, mode="decoupled"),
                         projects, force=True)
    built = build_native(project.root, LocalExecutor(), cache, cache / "test-builds", jobs=2)
    print(f"SlowChainDecoupled built in {built.seconds:.1f} s")
    return built


def _audio(frames: int = 4800) -> np.ndarray:
    rng = np.random.default_rng(11)
    return (rng.uniform(-1.0, 1.0, (2, frames)) * np.linspace(0.05, 1.5, frames)).astype(np.float32)


@pytest.mark.slow
def test_external_data_loads_from_the_bundle(chain_build: NativeBuild, host_dir: Path, tmp_path: Path):
    resources = BundleLayout(chain_build.bundle).resources
    assert sorted(p.name for p in resources.iterdir()) == ["chain.onnx", "chain.onnx.data", "chain.onnx.roles"]
    audio = _audio()
    write_wav(tmp_path / "in.wav", audio, SAMPLE_RATE)
    result = process_file([chain_build.bundle], tmp_path / "in.wav", tmp_path / "out.wav",
                          LocalExecutor(), host_dir, block=FRAME)
    out, _ = read_wav(tmp_path / "out.wav")
    latency = result["plugins"][0]["latency_samples"]
    # Inline, frames of 64 over blocks of any size up to 64: 63 samples.
    assert latency == FRAME - 1
    error = delayed_error(out, _frames_reference(chain_build.project.model, audio), latency)
    print(f"SlowChain vs onnxruntime: latency {latency}, max error {error:.3g}")
    assert error < 1e-5 and np.max(np.abs(out)) > 0.01


def _without(bundle: Path, into: Path, file_name: str) -> Path:
    copy = into / bundle.name
    shutil.copytree(bundle, copy, symlinks=True)
    (BundleLayout(copy).resources / file_name).unlink()
    return copy


@pytest.mark.slow
@pytest.mark.parametrize("missing", ["chain.onnx", "chain.onnx.data", "chain.onnx.roles"])
def test_a_bundle_missing_its_model_refuses_to_activate(chain_build: NativeBuild, host_dir: Path,
                                                        tmp_path: Path, missing: str):
    broken = _without(chain_build.bundle, tmp_path, missing)
    write_wav(tmp_path / "in.wav", _audio(640), SAMPLE_RATE)
    with pytest.raises(BuildError) as caught:
        process_file([broken], tmp_path / "in.wav", tmp_path / "out.wav", LocalExecutor(), host_dir)
    line = caught.value.one_line()
    print(line)
    assert "setActive(true) was refused by SlowChain" in line
    assert "the plugin said: SlowChain: the model cannot run:" in line
    assert not (tmp_path / "out.wav").exists()
    # rt-check fails the same way: no verdict on a plugin that never ran.
    with pytest.raises(BuildError, match="setActive\\(true\\) was refused by SlowChain"):
        rt_check(broken, LocalExecutor(), host_dir, blocks=10)


@pytest.mark.slow
def test_rt_check_fails_a_model_too_slow_for_the_block(chain_build: NativeBuild, host_dir: Path):
    report = rt_check(chain_build.bundle, LocalExecutor(), host_dir, blocks=300, block=FRAME,
                      rate=SAMPLE_RATE)
    text = format_report(report)
    print(text)
    # Inline on the audio thread: two lanes of 100 matmuls take several deadlines.
    assert report.late and report.overruns > 0.9 * report.blocks
    assert report.p99_us > report.deadline_us and report.max_us >= report.p99_us
    assert not report.passes() and not report.passes(allow_engine=True)
    assert f"{report.overruns} of 300 blocks over the {report.deadline_us:.1f} us deadline" in text
    assert "FAIL" in text


@pytest.mark.slow
def test_rt_check_fails_a_decoupled_model_whose_worker_cannot_keep_up(decoupled_chain_build: NativeBuild,
                                                                    host_dir: Path):
    """Decoupled, the audio thread only moves samples and meets every deadline; the
    worker needs several block periods per block, so the output is mostly zeros.
    Only the worker's report shows it, and rt-check fails on it."""
    report = rt_check(decoupled_chain_build.bundle, LocalExecutor(), host_dir, blocks=300, block=FRAME,
                      rate=SAMPLE_RATE)
    text = format_report(report)
    print(text)
    assert report.worker.models == 1 and report.worker.runs > 0
    assert report.worker.p99_us > report.deadline_us
    assert report.worker.underrun_samples > 0.5 * report.blocks * report.block
    assert report.worker_late and not report.late and report.unsafe == 0
    assert not report.passes() and not report.passes(allow_engine=True)
    assert "the inference worker was late" in text and "FAIL" in text
