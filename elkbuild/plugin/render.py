"""new-plugin: render a JUCE VST3 plugin project for a model (jinja2).

`new-plugin` reads the model's tensors, checks that they fit the chosen kind, and
renders templates/plugin into plugins/<Name>/, with the model (and its external
data files) copied into <Name>/model/. The engines and the streaming code are not
rendered: the project links elkbuild's runtime (runtime/cmake/ElkRuntime.cmake).
The project is rendered beside its final place and moved in whole, so a failure
leaves nothing half-made.

Kinds:
- effect: every tensor gets a role (roles.py: audio, state, constant, extra; past
  context from the audio's lengths), kept in plugin.yaml's model_roles; elkrt
  streams the model over host blocks (a FIFO between blocks and frames, never
  zero-padding; inline or on the shared worker pool, plugin.yaml's mode) and the
  plugin reports the latency that adds.
- classifier: the model maps F features to C class scores; an onset detector on the
  audio thread hands features to a worker thread through lock-free queues and the
  result comes back as a MIDI note; the plugin reports its latency.
  With --features log-mel (features.py) the features are instead the last T log-mel
  frames of the audio (elkrt::LogMelFrontEnd), handed over every N frames, and each
  run's best class comes back as a note.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import jinja2
import yaml

from elkbuild.config import read_yaml_file
from elkbuild.errors import UsageError
from elkbuild.plugin.features import (FEATURE_TYPES, FeatureFlags, LogMel, fit_log_mel,
                                      from_yaml as features_from_yaml, to_yaml as features_to_yaml)
from elkbuild.plugin.identity import (CODE_RULE, IDENTITY_FILE, NAME_RULE, PluginIdentity,
                                      code_is_valid, load_identity, name_is_valid)
from elkbuild.plugin.models import (ModelError, ModelInfo, TensorInfo, model_format, onnx_runner,
                                    read_model)
from elkbuild.plugin.project import ENGINES, KINDS, MODES, RESAMPLE, PluginProject, load_project
from elkbuild.plugin.roles import ModelRoles, RoleFlags, assign_roles, measure_context, roles_to_yaml

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
MAX_FRAME = 8192          # samples per effect frame
MAX_FEATURES = 4096
MAX_CLASSES = 68          # MIDI notes 60..127
DEFAULT_MANUFACTURER = "Elkbuild User"
DEFAULT_MANUFACTURER_CODE = "Elku"
CLASSIFIER_DEFAULTS = {"window_ms": 46.0, "first_note": 60, "onset_ratio": 2.0,
                       "onset_floor": 0.01}


@dataclass(frozen=True)
class NewPlugin:
    """What the user asked `new-plugin` for (flags), before any file is touched."""

    name: str
    engine: str
    kind: str
    model: Path
    manufacturer: str | None = None
    manufacturer_code: str | None = None
    plugin_code: str | None = None
    description: str | None = None
    mode: str | None = None   # None: kept from an existing plugin.yaml, else auto
    resample: str | None = None   # an effect's rate conversion; None: kept, else off
    roles: RoleFlags = RoleFlags()   # an effect's tensor flags (--frame, --state, ...)
    features: FeatureFlags = FeatureFlags()   # a classifier's --features log-mel flags


# ---- checks -----------------------------------------------------------------

def _one_line_text(flag: str, value: str) -> str:
    if not value.strip() or any(ch in value for ch in "\r\n\t\0"):
        raise UsageError(f"{flag} {value!r}: must be one line of text", f"give a plain {flag}")
    return value.strip()


def default_plugin_code(name: str) -> str:
    """First four letters/digits of the name, first one uppercase (Neur for NeuralSaturator)."""
    letters = re.sub(r"[^A-Za-z0-9]", "", name)
    code = (letters + "xxxx")[:4]
    return code[0].upper() + code[1:]


def check_request(request: NewPlugin) -> None:
    """Flag-level checks: every problem names the flag and the fix."""
    if not name_is_valid(request.name):
        raise UsageError(f"NAME {request.name!r} {NAME_RULE}",
                         "it names the folder, the .vst3 bundle and the CMake target")
    if request.engine not in ENGINES:
        raise UsageError(f"--engine {request.engine!r} is not known", "use --engine onnx or --engine tflite")
    if request.kind not in KINDS:
        raise UsageError(f"--kind {request.kind!r} is not known", "use --kind effect or --kind classifier")
    if request.resample is not None and request.resample not in RESAMPLE:
        raise UsageError(f"--resample {request.resample!r} is not known",
                         f"use --resample {', --resample '.join(RESAMPLE)}")
    if request.resample not in (None, "off") and request.kind != "effect":
        raise UsageError(f"--resample is for --kind effect, not {request.kind}",
                         "drop --resample: log-mel features name their own --sample-rate")
    if request.mode is not None and request.mode not in MODES:
        raise UsageError(f"--mode {request.mode!r} is not known",
                         f"use --mode {', --mode '.join(MODES)}")
    for flag, code in (("--manufacturer-code", request.manufacturer_code),
                       ("--plugin-code", request.plugin_code)):
        if code is not None and not code_is_valid(code):
            raise UsageError(f"{flag} {code!r} {CODE_RULE}", f"e.g. {flag} Abcd")
    for flag, text in (("--manufacturer", request.manufacturer), ("--description", request.description)):
        if text is not None:
            _one_line_text(flag, text)
    if request.features.features is not None and request.features.features not in FEATURE_TYPES:
        raise UsageError(f"--features {request.features.features!r} is not known", "use --features log-mel")
    if request.kind != "classifier" and (request.features.features or request.features.given()):
        raise UsageError(f"--features is for --kind classifier, not {request.kind}",
                         "use --kind classifier, or drop the --features flags")
    if request.features.features is None and request.features.given():
        flag = next(iter(request.features.given()))
        raise UsageError(f"--{flag.replace('_', '-')} describes log-mel features",
                         "add --features log-mel")
    fmt = model_format(request.model)
    if ENGINES[request.engine] != fmt:
        other = "tflite" if fmt == "tflite" else "onnx"
        raise UsageError(f"--model {request.model} is a {fmt} model but --engine is {request.engine}",
                         f"use --engine {other}, or give a .{ENGINES[request.engine]} model")


def fit_classifier(info: ModelInfo, log_mel: bool = False) -> tuple[TensorInfo, TensorInfo]:
    """The feature input and class-score output of a classifier, or a ModelError."""
    if len(info.inputs) != 1 or len(info.outputs) != 1:
        raise ModelError(info.path, f"has {len(info.inputs)} inputs and {len(info.outputs)} outputs; "
                         "a classifier model needs exactly one of each",
                         "export the model with a single input and a single output tensor")
    tensor_in, tensor_out = info.inputs[0], info.outputs[0]
    for role, tensor in (("input", tensor_in), ("output", tensor_out)):
        if tensor.dtype != "float32":
            raise ModelError(info.path, f"{role} {tensor.name!r} is {tensor.dtype}; plugins run float32",
                             "export a float32 model (quantise inside, keep float32 in/out)")
        if not tensor.is_fixed:
            raise ModelError(info.path, f"{role} {tensor.name!r} has the dynamic shape "
                             f"{_shape_text(tensor.shape)}; buffers are sized before audio starts",
                             "export the model with fixed sizes (only the batch may be dynamic)")
    if not log_mel and not 1 <= tensor_in.elements <= MAX_FEATURES:
        raise ModelError(info.path, f"{tensor_in.elements} input features is not in 1..{MAX_FEATURES}",
                         "a classifier takes a small feature vector")
    if not 2 <= tensor_out.elements <= MAX_CLASSES:
        raise ModelError(info.path, f"{tensor_out.elements} output classes is not in 2..{MAX_CLASSES} "
                         "(one MIDI note each)", "use --kind effect for a model that outputs audio")
    return tensor_in, tensor_out


def fit_effect(info: ModelInfo, flags: RoleFlags) -> ModelRoles:
    """Every tensor of an effect's model with its role (roles.py), or a RoleError."""
    roles = assign_roles(info, flags)
    if info.format == "onnx":
        roles = measure_context(info, flags, roles, onnx_runner(info))
    if not 1 <= roles.frame <= MAX_FRAME:
        raise ModelError(info.path, f"a frame of {roles.frame} samples is not in 1..{MAX_FRAME}",
                         "export the model for a smaller frame, or give --frame")
    return roles


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


# ---- rendering --------------------------------------------------------------

def _cmake_string(value: str) -> str:
    return re.sub(r'([\\"$;])', r"\\\1", value)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters["cmake_string"] = _cmake_string
    return env


def _existing(project: Path, key: str, allowed: tuple[str, ...]) -> str | None:
    """plugin.yaml's `key` when it is one of `allowed` (kept when re-rendering)."""
    source = project / IDENTITY_FILE
    value = read_yaml_file(source).get(key) if source.is_file() else None
    return value if value in allowed else None


def _existing_features(project: Path) -> LogMel | None:
    source = project / IDENTITY_FILE
    data = read_yaml_file(source).get("features") if source.is_file() else None
    return features_from_yaml(data, source) if data is not None else None


def _existing_identity(project: Path) -> PluginIdentity | None:
    source = project / IDENTITY_FILE
    return load_identity(source) if source.is_file() else None


def template_context(request: NewPlugin, *, existing: PluginIdentity | None = None,
                     model_data: tuple[str, ...] = (), existing_mode: str | None = None,
                     existing_resample: str | None = None,
                     roles: ModelRoles | None = None,
                     classifier: tuple[TensorInfo, TensorInfo] | None = None,
                     log_mel: LogMel | None = None) -> dict:
    """Everything the templates use. Identity not given on the command line is kept
    from an existing plugin.yaml, so re-rendering never changes who a plugin is."""
    def pick(given: str | None, kept: str | None, default: str) -> str:
        return given if given is not None else (kept if kept else default)

    def tensor(t: TensorInfo | None) -> dict:
        if t is None:
            return {}
        return {"name": t.name, "elements": t.elements, "shape_text": _shape_text(t.shape)}

    def roles_yaml() -> str:
        if roles is None:
            return ""
        # Shapes on one line each ([1, 64]): plugin.yaml stays readable.
        return yaml.safe_dump({"model_roles": roles_to_yaml(roles)}, sort_keys=False,
                              default_flow_style=None, width=100)

    def features_yaml() -> str:
        if log_mel is None:
            return ""
        return yaml.safe_dump({"features": features_to_yaml(log_mel)}, sort_keys=False, width=100)

    mode = request.mode or existing_mode or "auto"
    resample = request.resample or existing_resample or "off"
    return {
        "name": request.name,
        "class_name": re.sub(r"\W", "_", request.name) + "AudioProcessor",
        "version": "1.0.0",
        "engine": request.engine,
        "kind": request.kind,
        "mode": mode,
        "mode_enum": {"auto": "Automatic", "inline": "Inline", "decoupled": "Decoupled"}[mode],
        "resample": resample,
        "model_file": request.model.name,
        "model_data": list(model_data),
        "manufacturer": pick(request.manufacturer, existing and existing.manufacturer,
                             DEFAULT_MANUFACTURER),
        "manufacturer_code": pick(request.manufacturer_code, existing and existing.manufacturer_code,
                                  DEFAULT_MANUFACTURER_CODE),
        "plugin_code": pick(request.plugin_code, existing and existing.plugin_code,
                            default_plugin_code(request.name)),
        "vst3_class_name": existing.vst3_class_name if existing else request.name,
        "description": pick(request.description, existing and existing.description,
                            f"{request.name}: a neural {request.kind} ({request.engine})"),
        "input": tensor(classifier[0] if classifier else None),
        "output": tensor(classifier[1] if classifier else None),
        "model_roles_yaml": roles_yaml(),
        "log_mel": log_mel.__dict__ if log_mel else None,
        "features_yaml": features_yaml(),
        **CLASSIFIER_DEFAULTS,
    }


def render_tree(context: dict, into: Path) -> list[Path]:
    """Render templates/plugin into `into`; returns the files written."""
    env = _environment()
    source = TEMPLATES / "plugin"
    written = []
    for path in sorted(source.rglob("*")):
        if path.is_dir():
            continue
        relative = path.relative_to(source)
        if path.suffix == ".j2":
            target = into / relative.with_suffix("")
            text = env.get_template(f"plugin/{relative.as_posix()}").render(**context)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        else:
            target = into / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        written.append(target)
    return written


def new_plugin(request: NewPlugin, projects: Path, *, force: bool = False,
               say: Callable[[str], None] = lambda _: None) -> PluginProject:
    """Check everything, render beside plugins/<Name>, then move the project in whole."""
    check_request(request)
    info = read_model(request.model)
    roles = fit_effect(info, request.roles) if request.kind == "effect" else None
    project = projects / request.name
    kept = _existing_features(project) if project.exists() and request.kind == "classifier" else None
    wants_log_mel = request.features.features is not None or kept is not None
    classifier = fit_classifier(info, wants_log_mel) if request.kind == "classifier" else None
    log_mel = fit_log_mel(request.model, classifier[0], request.features, kept, say) \
        if classifier and wants_log_mel else None
    existing = None
    if project.exists():
        only_identity = sorted(p.name for p in project.iterdir()) == [IDENTITY_FILE]
        if not (force or only_identity):
            raise UsageError(f"{project} already exists",
                             "pass --force to render it again (its identity is kept), "
                             "or choose another NAME")
        existing = _existing_identity(project)
    context = template_context(request, existing=existing,
                               model_data=tuple(p.name for p in info.external_data),
                               existing_mode=_existing(project, "mode", MODES),
                               existing_resample=_existing(project, "resample", RESAMPLE),
                               roles=roles, classifier=classifier,
                               log_mel=log_mel)
    for guess in roles.guesses if roles else ():
        say(guess)
    for key in ("manufacturer_code", "plugin_code"):
        if not code_is_valid(context[key]):
            flag = "--" + key.replace("_", "-")
            raise UsageError(f"{key} {context[key]!r} (derived from NAME) {CODE_RULE}",
                             f"give {flag} explicitly")

    projects.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{request.name}.", dir=projects))
    try:
        render_tree(context, staging)
        (staging / "model").mkdir(exist_ok=True)
        for model_file in (request.model, *info.external_data):
            shutil.copyfile(model_file, staging / "model" / model_file.name)
        load_project(staging, folder_name=request.name)  # what was rendered reads back
        old = None
        if project.exists():
            old = projects / f".{request.name}.replaced"
            shutil.rmtree(old, ignore_errors=True)
            project.rename(old)
        staging.rename(project)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return load_project(project)
