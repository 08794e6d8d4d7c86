"""The identity of a plugin project: plugins/<Name>/plugin.yaml.

The identity is what hosts see and what must not change by accident once a plugin is
in use: its name (also the name of the `.vst3` bundle), its manufacturer, the two
four-character JUCE codes, and the VST3 class name. Sushi finds a VST3 plugin inside
its bundle by that class name: the `uid` of a `vst3x` plugin in a Sushi config is the
`PClassInfo::name` the plugin's factory reports, which JUCE sets to the plugin name.

```yaml
name: NeuralSaturator
manufacturer: Elkbuild Examples
manufacturer_code: Elkb     # 4 characters, first one uppercase
plugin_code: Nsat           # 4 characters, first one uppercase
vst3_class_name: NeuralSaturator   # optional; defaults to name
description: A one-line summary     # optional
engine: onnx                        # build keys, read by elkbuild.plugin.project
kind: effect
model: saturator.onnx
```
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elkbuild.config import read_yaml_file
from elkbuild.errors import MISSING, ConfigError

IDENTITY_FILE = "plugin.yaml"
DEFAULT_PLUGINS_DIR = "plugins"
DEFAULT_INSTALL_DIR = "/home/mind/plugins"

# A project name becomes a folder, a bundle file name and a CMake target: keep it plain.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")
# JUCE plugin and manufacturer codes: four characters, the first one uppercase
# (Audio Units and some hosts reject codes that are all lowercase).
_JUCE_CODE = re.compile(r"[A-Z][A-Za-z0-9]{3}")
# Steinberg::PClassInfo::name is a 64-byte C string.
_VST3_NAME_MAX = 63

_REQUIRED = ("name", "manufacturer", "manufacturer_code", "plugin_code")
_OPTIONAL = ("vst3_class_name", "description")
# How the project is built (engine, kind, model file, where the model runs);
# elkbuild.plugin.project validates them.
BUILD_KEYS = ("engine", "kind", "model", "mode", "resample", "model_roles", "features")

NAME_RULE = ("must start with a letter and hold only letters, digits, '-' and '_' "
             "(at most 63 characters)")
CODE_RULE = "must be 4 letters or digits, the first one uppercase (e.g. 'Abcd')"


def name_is_valid(name: str) -> bool:
    return bool(_NAME.fullmatch(name))


def code_is_valid(code: str) -> bool:
    return bool(_JUCE_CODE.fullmatch(code))


@dataclass(frozen=True)
class PluginIdentity:
    """Who a plugin is, as hosts and Sushi see it."""

    name: str
    manufacturer: str
    manufacturer_code: str
    plugin_code: str
    vst3_class_name: str
    description: str
    source: Path

    @property
    def bundle_name(self) -> str:
        return f"{self.name}.vst3"

    def install_path(self, plugin_dir: str = DEFAULT_INSTALL_DIR) -> str:
        """Where deploy puts the bundle on the board."""
        return posixpath.join(plugin_dir, self.bundle_name)


def plugins_dir(root: Path, configured: str | None = None) -> Path:
    return root / (configured or DEFAULT_PLUGINS_DIR)


def identity_path(projects: Path, name: str) -> Path:
    return projects / name / IDENTITY_FILE


def known_projects(projects: Path) -> list[str]:
    """Names of the folders under `projects` that hold an identity file."""
    if not projects.is_dir():
        return []
    return sorted(p.parent.name for p in projects.glob(f"*/{IDENTITY_FILE}"))


def _text(source: Path, data: dict[str, Any], key: str, required: bool) -> str:
    value = data.get(key, MISSING)
    if value is MISSING:
        if required:
            raise ConfigError(source, key, MISSING, "is required",
                              f"add `{key}:` to {source.name}")
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(source, key, value, "must be a non-empty text")
    return value.strip()


def load_identity(source: Path) -> PluginIdentity:
    """Read and validate one plugin.yaml; the folder name must equal `name`."""
    data = read_yaml_file(source)
    for key in data:
        if key not in _REQUIRED + _OPTIONAL + BUILD_KEYS:
            raise ConfigError(source, str(key), MISSING, "is not a known key; allowed: "
                              + ", ".join(_REQUIRED + _OPTIONAL + BUILD_KEYS))
    name = _text(source, data, "name", True)
    if not name_is_valid(name):
        raise ConfigError(source, "name", name, NAME_RULE,
                          "it names the .vst3 bundle and the CMake target")
    if source.parent.name != name:
        raise ConfigError(source, "name", name, f"must equal its folder name "
                          f"{source.parent.name!r}", "rename the folder or the plugin")
    codes = {}
    for key in ("manufacturer_code", "plugin_code"):
        code = _text(source, data, key, True)
        if not code_is_valid(code):
            raise ConfigError(source, key, code, CODE_RULE)
        codes[key] = code
    class_name = _text(source, data, "vst3_class_name", False) or name
    if len(class_name.encode("utf-8")) > _VST3_NAME_MAX:
        raise ConfigError(source, "vst3_class_name", class_name,
                          f"must be at most {_VST3_NAME_MAX} bytes (VST3 class names are)")
    return PluginIdentity(name=name, manufacturer=_text(source, data, "manufacturer", True),
                          manufacturer_code=codes["manufacturer_code"],
                          plugin_code=codes["plugin_code"], vst3_class_name=class_name,
                          description=_text(source, data, "description", False), source=source)
