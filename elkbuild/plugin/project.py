"""A rendered plugin project as plugin.yaml describes it: loaded and checked.

A project is plugins/<Name>/ with plugin.yaml (identity, engine, kind, model file)
and the model in model/, with its external data files (MODEL.onnx.data) beside it. Every problem names plugin.yaml and the key at fault.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from elkbuild.config import read_yaml_file
from elkbuild.errors import ConfigError
from elkbuild.plugin.features import LogMel, from_yaml as features_from_yaml
from elkbuild.plugin.identity import IDENTITY_FILE, PluginIdentity, load_identity
from elkbuild.plugin.models import external_data_files, model_format
from elkbuild.plugin.roles import ModelRoles, roles_from_yaml

KINDS = ("effect", "classifier")
MODES = ("auto", "inline", "decoupled")
"""Where an effect's model runs: decided by the runtime (auto: on the worker pool when
the engine is not real-time safe or a block's inference takes over half its period),
on the audio thread, or on the worker pool."""
RESAMPLE = ("off", "fastest", "medium", "best")
"""An effect whose model was trained at another rate than the host's: off (refused at
activation) or converted both ways with libsamplerate's sinc converter of that quality."""
ENGINES = {"onnx": "onnx", "tflite": "tflite"}   # engine -> model format it runs


@dataclass(frozen=True)
class PluginProject:
    """A rendered project as plugin.yaml describes it."""

    root: Path
    identity: PluginIdentity
    engine: str
    kind: str
    model: Path
    model_data: tuple[Path, ...] = ()   # the model's external data files, in model/
    mode: str = "auto"                  # one of MODES
    roles: ModelRoles | None = None     # an effect's tensors and their roles (model_roles:)
    features: LogMel | None = None      # a classifier's log-mel input (features:)
    resample: str = "off"               # one of RESAMPLE



def load_project(root: Path, folder_name: str | None = None) -> PluginProject:
    """Identity plus build keys of a rendered project; every problem names plugin.yaml."""
    source = root / IDENTITY_FILE
    if folder_name is None:
        identity = load_identity(source)
    else:  # a project still in its staging folder: the folder name comes later
        identity = _identity_named(source, folder_name)
    data = read_yaml_file(source)
    engine = data.get("engine")
    if engine not in ENGINES:
        raise ConfigError(source, "engine", engine, "must be onnx or tflite")
    kind = data.get("kind")
    if kind not in KINDS:
        raise ConfigError(source, "kind", kind, "must be effect or classifier")
    model_name = data.get("model")
    if not isinstance(model_name, str) or "/" in model_name or not model_name:
        raise ConfigError(source, "model", model_name, "must be a file name inside model/")
    model = root / "model" / model_name
    if not model.is_file():
        raise ConfigError(source, "model", model_name, f"names {model}, which does not exist",
                          "copy the model there or run `invoke new-plugin --force`")
    if model_format(model) != ENGINES[engine]:
        raise ConfigError(source, "engine", engine, f"does not run {model.name}",
                          "set engine to match the model file")
    mode = data.get("mode", "auto")
    if mode not in MODES:
        raise ConfigError(source, "mode", mode, f"must be {', '.join(MODES)}")
    roles = None
    resample = data.get("resample", "off")
    if resample is False:   # YAML reads a bare off as false
        resample = "off"
    if resample not in RESAMPLE:
        raise ConfigError(source, "resample", resample, f"must be {', '.join(RESAMPLE)}")
    if kind == "effect":
        if "model_roles" not in data:
            raise ConfigError(source, "model_roles", None, "is missing: an effect says what each "
                              "tensor of its model is for", "run `invoke new-plugin --force`")
        roles = roles_from_yaml(data["model_roles"], str(source))
        if resample != "off" and roles.sample_rate is None:
            raise ConfigError(source, "resample", resample, "needs the rate the model was trained at",
                              "set model_roles: sample_rate: HZ (or new-plugin --sample-rate HZ)")
    elif resample != "off":
        raise ConfigError(source, "resample", resample, f"is for kind effect, not {kind}",
                          "remove it: a classifier's features name their own sample_rate")
    features = None
    if "features" in data:
        if kind != "classifier":
            raise ConfigError(source, "features", "...", f"is for kind classifier, not {kind}",
                              "remove the features block")
        features = features_from_yaml(data["features"], source)
    # A missing data file is named here, not found by the plugin refusing to load.
    return PluginProject(root, identity, engine, kind, model, external_data_files(model), mode, roles,
                         features, resample)


def _identity_named(source: Path, folder_name: str) -> PluginIdentity:
    with tempfile.TemporaryDirectory() as tmp:
        check = Path(tmp) / folder_name / IDENTITY_FILE
        check.parent.mkdir()
        shutil.copyfile(source, check)
        found = load_identity(check)
    return PluginIdentity(**{**found.__dict__, "source": source})
