"""`new-plugin`: rendering, identity and model checks, and the task's error contract."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from elkbuild.plugin import example_models
from elkbuild.errors import UsageError
from elkbuild.plugin.models import ModelError
from elkbuild.plugin.identity import load_identity
from elkbuild.plugin.project import load_project
from elkbuild.plugin.render import NewPlugin, new_plugin

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return example_models.write_examples(tmp_path_factory.mktemp("models"))


def _effect(models, name="Fuzz", **identity) -> NewPlugin:
    return NewPlugin(name, "onnx", "effect", models["saturator.onnx"], **identity)


def _classifier(models, name="Hits", **identity) -> NewPlugin:
    return NewPlugin(name, "tflite", "classifier", models["classifier.tflite"], **identity)


def test_effect_project_is_rendered_with_the_model_shapes(tmp_path, models):
    project = new_plugin(_effect(models, manufacturer="Someone", manufacturer_code="Smon",
                                 plugin_code="Fz01"), tmp_path)
    root = tmp_path / "Fuzz"
    assert project.root == root and project.kind == "effect" and project.engine == "onnx"
    assert (root / "model" / "saturator.onnx").read_bytes() == models["saturator.onnx"].read_bytes()
    # The tensors' roles live in plugin.yaml; the build gives them to the runtime.
    roles = project.roles
    assert [(t.name, t.role, t.shape, t.time_axis) for t in roles.tensors] == [
        ("audio", "audio", (1, 64), 1), ("saturated", "audio", (1, 64), 1)]
    assert roles.frame == 64 and roles.receptive_field == 1
    assert "model_roles:" in (root / "plugin.yaml").read_text()
    cmake = (root / "CMakeLists.txt").read_text()
    assert "PLUGIN_MANUFACTURER_CODE Smon" in cmake and "PLUGIN_CODE Fz01" in cmake
    assert "NEEDS_MIDI_OUTPUT FALSE" in cmake
    for flag in ("JUCE_WEB_BROWSER=0", "JUCE_USE_CURL=0", "-ffast-math", "VST3_AUTO_MANIFEST FALSE"):
        assert flag in cmake
    assert not (root / "Source" / "SpscQueue.h").exists()
    # The runtime (engines, streaming) is linked from elkbuild's checkout, not copied.
    assert not (root / "Source" / "engines").exists()
    assert 'include("${ELKBUILD_RUNTIME_DIR}/cmake/ElkRuntime.cmake")' in cmake
    assert "elkrt_add(Fuzz ENGINE ${ELKBUILD_ENGINE}" in cmake
    processor = (root / "Source" / "PluginProcessor.cpp").read_text()
    assert "streaming->process (" in processor and "streaming->latencySamples()" in processor
    assert "std::fill" not in processor, "a partial frame is never zero-padded"
    identity = load_identity(root / "plugin.yaml")
    assert (identity.name, identity.manufacturer, identity.plugin_code) == ("Fuzz", "Someone", "Fz01")
    assert not list(tmp_path.glob(".*")), "no staging folder is left behind"


def test_classifier_project_sizes_features_and_classes(tmp_path, models):
    new_plugin(_classifier(models), tmp_path)
    root = tmp_path / "Hits"
    spec = (root / "Source" / "ModelSpec.h").read_text()
    assert "constexpr std::size_t features = 8;" in spec
    assert "constexpr std::size_t classes = 4;" in spec
    assert "frameSamples" not in spec
    assert not (root / "Source" / "SpscQueue.h").exists(), "the runtime's queue is linked, not copied"
    assert "#include <elkrt/spsc.h>" in (root / "Source" / "PluginProcessor.h").read_text()
    processor = (root / "Source" / "PluginProcessor.cpp").read_text()
    assert "setLatencySamples (latencySamples)" in processor
    assert "featureQueue.push" in processor and "resultQueue.pop" in processor
    assert 'set(ELKBUILD_ENGINE "tflite"' in (root / "CMakeLists.txt").read_text()
    assert "NEEDS_MIDI_OUTPUT TRUE" in (root / "CMakeLists.txt").read_text()
    # Derived identity: the plugin code comes from the name.
    assert load_identity(root / "plugin.yaml").plugin_code == "Hits"


def test_rendered_sources_hold_no_template_syntax(tmp_path, models):
    new_plugin(_effect(models), tmp_path)
    new_plugin(_classifier(models), tmp_path)
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix in (".h", ".cpp", ".txt", ".yaml"):
            text = path.read_text()
            assert not re.search(r"\{\{|\{%|%\}|\}\}", text), path
            assert path.suffix != ".j2"


def test_rendered_cmake_project_configures(tmp_path, models):
    """The rendered CMakeLists is valid CMake: it configures against Debian's JUCE."""
    from conftest import require_real_part

    juce = Path("/usr/lib/x86_64-linux-gnu/cmake").glob("JUCE-*/JUCEConfig.cmake")
    require_real_part(any(juce), "JUCE's CMake package",
                      "apt-get install juce-modules-source juce-tools")
    from elkbuild.build.cmake import RUNTIME_DIR, write_model_roles
    from elkbuild.build.engines import onnxruntime_headers, onnxruntime_wheel_library
    from elkbuild.config import load_config
    from elkbuild.executor import LocalExecutor

    project = new_plugin(_effect(models), tmp_path)
    roles = write_model_roles(project, tmp_path / "roles")
    assert roles.read_text().endswith("\ninput audio audio time=1 shape=1,64\noutput saturated audio time=1\n")
    engine = [f"-DELKBUILD_ENGINE_LIBRARY={onnxruntime_wheel_library()}", f"-DELKBUILD_MODEL_ROLES={roles}",
              f"-DELKBUILD_ENGINE_INCLUDE_DIRS={onnxruntime_headers(LocalExecutor(), load_config(REPO).cache_dir)}"]
    no_runtime = subprocess.run(["cmake", "-S", str(tmp_path / "Fuzz"), "-B", str(tmp_path / "bare"),
                                 *engine], capture_output=True, text=True)
    assert no_runtime.returncode != 0 and "ELKBUILD_RUNTIME_DIR is ''" in no_runtime.stderr
    done = subprocess.run(["cmake", "-S", str(tmp_path / "Fuzz"), "-B", str(tmp_path / "build"),
                           *engine, f"-DELKBUILD_RUNTIME_DIR={RUNTIME_DIR}"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    cache = (tmp_path / "build" / "CMakeCache.txt").read_text()
    assert "ELKBUILD_ENGINE:STRING=onnx" in cache
    wrong = subprocess.run(["cmake", "-S", str(tmp_path / "Fuzz"), "-B", str(tmp_path / "build"),
                            "-DELKBUILD_ENGINE=torch"], capture_output=True, text=True)
    assert wrong.returncode != 0 and "use onnx or tflite" in wrong.stderr


def test_identity_is_kept_when_a_project_is_rendered_again(tmp_path, models):
    new_plugin(_effect(models, manufacturer="Someone", manufacturer_code="Smon",
                       plugin_code="Fz01"), tmp_path)
    with pytest.raises(UsageError, match="already exists"):
        new_plugin(_effect(models), tmp_path)
    again = new_plugin(_effect(models, description="Now with a description"), tmp_path, force=True)
    assert (again.identity.manufacturer_code, again.identity.plugin_code) == ("Smon", "Fz01")
    assert again.identity.description == "Now with a description"


def test_example_projects_keep_their_identity_and_load():
    saturator = load_project(REPO / "plugins" / "NeuralSaturator")
    assert (saturator.identity.manufacturer_code, saturator.identity.plugin_code) == ("Elkb", "Nsat")
    assert (saturator.engine, saturator.kind) == ("onnx", "effect")
    assert saturator.model.read_bytes() == example_models.saturator_onnx_bytes()
    classifier = load_project(REPO / "plugins" / "OnsetClassifier")
    assert (classifier.engine, classifier.kind) == ("tflite", "classifier")
    assert classifier.model.read_bytes() == example_models.classifier_tflite_bytes()


def test_example_projects_are_what_the_templates_render(tmp_path, models):
    """The checked-in examples are exactly today's template output (no drift)."""
    from elkbuild.plugin.roles import RoleFlags

    runtime_models = REPO / "tests" / "runtime" / "models"
    lstm = NewPlugin("LstmAmp", "onnx", "effect", runtime_models / "lstm_amp.onnx",
                     roles=RoleFlags(sample_rate=48000))
    wavenet = NewPlugin("WaveNetAmp", "onnx", "effect", runtime_models / "wavenet.onnx",
                        roles=RoleFlags(frame=2048, sample_rate=48000))
    gru = NewPlugin("GruFrame576", "onnx", "effect", runtime_models / "gru_frame576.onnx",
                    roles=RoleFlags(frame=576, constants={"sample_rate": 48000}, sample_rate=48000))
    for name, request in (("NeuralSaturator", _effect(models, "NeuralSaturator")),
                          ("OnsetClassifier", _classifier(models, "OnsetClassifier")),
                          ("LstmAmp", lstm), ("WaveNetAmp", wavenet), ("GruFrame576", gru)):
        shipped = REPO / "plugins" / name
        (tmp_path / name).mkdir()
        (tmp_path / name / "plugin.yaml").write_text((shipped / "plugin.yaml").read_text())
        new_plugin(request, tmp_path)
        rendered = {p.relative_to(tmp_path / name): p.read_bytes()
                    for p in (tmp_path / name).rglob("*") if p.is_file()}
        checked_in = {p.relative_to(shipped): p.read_bytes() for p in shipped.rglob("*") if p.is_file()}
        assert rendered == checked_in, name


@pytest.mark.parametrize("change,expected", [
    ({"name": "Fuzz Box"}, "NAME 'Fuzz Box' must start with a letter"),
    ({"name": "9lives"}, "NAME '9lives' must start with a letter"),
    ({"plugin_code": "fz01"}, "--plugin-code 'fz01' must be 4 letters"),
    ({"manufacturer_code": "Smonk"}, "--manufacturer-code 'Smonk' must be 4 letters"),
    ({"engine": "torch"}, "--engine 'torch' is not known"),
    ({"kind": "synth"}, "--kind 'synth' is not known"),
    ({"engine": "tflite"}, "is a onnx model but --engine is tflite"),
    ({"manufacturer": "Two\nlines"}, "--manufacturer 'Two\\nlines': must be one line"),
    ({"resample": "sinc"}, "--resample 'sinc' is not known"),
])
def test_bad_flags_are_refused_before_anything_is_written(tmp_path, models, change, expected):
    fields = {**_effect(models).__dict__, **change}
    with pytest.raises(UsageError) as caught:
        new_plugin(NewPlugin(**fields), tmp_path)
    assert expected in caught.value.one_line()
    assert list(tmp_path.iterdir()) == []


def test_resample_is_kept_in_plugin_yaml_and_checked_where_it_is_read(tmp_path, models):
    from elkbuild.errors import ConfigError
    from elkbuild.plugin.roles import RoleFlags

    project = new_plugin(_effect(models, resample="best", roles=RoleFlags(sample_rate=22050)), tmp_path)
    assert project.resample == "best" and project.roles.sample_rate == 22050
    # Kept when rendered again; the rate comes from the flags each time.
    again = new_plugin(_effect(models, roles=RoleFlags(sample_rate=22050)), tmp_path, force=True)
    assert again.resample == "best"
    assert new_plugin(_effect(models, name="Plain"), tmp_path).resample == "off"
    yaml_file = tmp_path / "Fuzz" / "plugin.yaml"
    text = yaml_file.read_text()
    yaml_file.write_text(text.replace("resample: best", "resample: sinc"))
    with pytest.raises(ConfigError, match="plugin.yaml: resample is 'sinc'; must be off, fastest, medium, best"):
        load_project(tmp_path / "Fuzz")
    yaml_file.write_text(text.replace("sample_rate: 22050", "sample_rate: null"))
    with pytest.raises(ConfigError, match="resample is 'best'; needs the rate the model was trained at") as caught:
        load_project(tmp_path / "Fuzz")
    assert "--sample-rate" in caught.value.one_line()
    with pytest.raises(UsageError, match="--resample is for --kind effect, not classifier"):
        new_plugin(_classifier(models, resample="medium"), tmp_path)


def test_models_that_do_not_fit_the_kind_are_refused(tmp_path, models):
    longer = _onnx_model(tmp_path / "models" / "longer.onnx", [1, 8], [1, 16])
    with pytest.raises(UsageError, match="gives 16 samples per run but input 'x' takes only 8") as caught:
        new_plugin(NewPlugin("Fx", "onnx", "effect", longer), tmp_path)
    assert "--shape x=" in caught.value.one_line()
    single = _onnx_model(tmp_path / "models" / "single.onnx", [1, 1], [1, 1])
    with pytest.raises(ModelError, match="1 output classes is not in 2..68"):
        new_plugin(NewPlugin("Cl", "onnx", "classifier", single), tmp_path / "plugins")
    assert not (tmp_path / "plugins").exists() or list((tmp_path / "plugins").iterdir()) == []


def _onnx_model(path: Path, shape_in: list, shape_out: list, dtype: str = "FLOAT") -> Path:
    import onnx
    from onnx import TensorProto, helper

    kind = getattr(TensorProto, dtype)
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", kind, shape_in)],
                              [helper.make_tensor_value_info("y", kind, shape_out)])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph), str(path))
    return path


def test_non_float_models_are_refused(tmp_path):
    model = _onnx_model(tmp_path / "ints.onnx", [1, 64], [1, 64], "INT16")
    with pytest.raises(UsageError, match="input 'x' is int16; plugins run float32"):
        new_plugin(NewPlugin("Ints", "onnx", "effect", model), tmp_path / "plugins")


def test_dynamic_time_axis_takes_the_frame_and_says_so(tmp_path):
    model = _onnx_model(tmp_path / "dynamic.onnx", ["batch", "n"], ["batch", "n"])
    said: list[str] = []
    project = new_plugin(NewPlugin("Dyn", "onnx", "effect", model), tmp_path / "plugins", say=said.append)
    assert project.roles.frame == 64 and project.roles.audio("input").shape == (1, 64)
    assert "input x: dynamic time dimension 1 ('n') taken as 64 samples (--frame N to choose)" in said
    assert "input x: dynamic batch dimension taken as 1" in said
    from elkbuild.plugin.roles import RoleFlags

    again = new_plugin(NewPlugin("Dyn", "onnx", "effect", model, roles=RoleFlags(frame=100)),
                       tmp_path / "plugins", force=True)
    assert again.roles.frame == 100


def _invoke(project: Path, *args: str) -> subprocess.CompletedProcess:
    (project / "elkbuild.yaml").touch()
    return subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(REPO), *args],
                          capture_output=True, text=True, cwd=project,
                          env={"ELKBUILD_PROJECT_DIR": str(project), "PATH": "/usr/bin:/bin",
                               "HOME": str(project)})


def test_task_renders_and_reports_bad_input_in_one_line(tmp_path, models):
    ok = _invoke(tmp_path, "new-plugin", "Fuzz", "--engine", "onnx", "--kind", "effect",
                 "--model", str(models["saturator.onnx"]), "--json")
    assert ok.returncode == 0, ok.stderr
    assert '"kind": "effect"' in ok.stdout
    assert (tmp_path / "plugins" / "Fuzz" / "CMakeLists.txt").is_file()

    bad = _invoke(tmp_path, "new-plugin", "Other", "--engine", "onnx", "--kind", "effect",
                  "--model", str(tmp_path / "missing.onnx"))
    assert bad.returncode != 0
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in bad.stderr
    assert "missing.onnx: no such file" in lines[0] and "hint:" in lines[0]

    code = _invoke(tmp_path, "new-plugin", "Other", "--engine", "onnx", "--kind", "effect",
                   "--model", str(models["saturator.onnx"]), "--plugin-code", "ab")
    assert code.returncode == 2
    assert "--plugin-code 'ab'" in code.stderr and len(code.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "plugins" / "Other").exists()

    # A tensor new-plugin cannot place: one line naming it and the deciding flag, exit 2;
    # given the flag, every guess is printed and the value lands in plugin.yaml.
    gru = REPO / "tests" / "runtime" / "models" / "gru_frame576.onnx"
    refused = _invoke(tmp_path, "new-plugin", "Gru", "--engine", "onnx", "--kind", "effect",
                      "--model", str(gru))
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "input 'sample_rate' (int64 [1])" in refused.stderr
    assert "--constant sample_rate=VALUE" in refused.stderr
    taken = _invoke(tmp_path, "new-plugin", "Gru", "--engine", "onnx", "--kind", "effect",
                    "--model", str(gru), "--constant", "sample_rate=48000", "--sample-rate", "48000")
    assert taken.returncode == 0, taken.stderr
    assert "new-plugin: input state: state, fed from output state_out" in taken.stdout
    assert "new-plugin: output level: extra (kept, not heard)" in taken.stdout
    roles = load_project(tmp_path / "plugins" / "Gru").roles
    assert {t.name: t.value for t in roles.tensors if t.role == "constant"} == {"sample_rate": 48000.0}
    assert roles.frame == 576 and roles.sample_rate == 48000
