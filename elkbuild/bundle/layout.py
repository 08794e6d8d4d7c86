"""The one place that knows how a VST3 bundle is laid out on Linux.

    <Name>.vst3/
      Contents/<arch>-linux/<Name>.so     the plugin code (Sushi loads aarch64-linux)
      Contents/<arch>-linux/*.so*         libraries bundled next to it
      Contents/Resources/                 the model and other data

Assembly, the ABI gate, rt-check, the native and cross builds and deploy all ask
these questions through `BundleLayout`, so the layout is spelled once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

SUFFIX = ".vst3"
CONTENTS = "Contents"
RESOURCES = "Resources"
LEGACY_ARCH_DIRS = {"aarch64": "arm64-linux"}
"""Older JUCE (6) names the code folder after `uname -m` spelled the Debian way;
Sushi (the VST3 SDK's module loader) only looks in Contents/aarch64-linux."""


def arch_dir(arch: str) -> str:
    """The code folder's name for a CPU: aarch64 -> aarch64-linux."""
    return f"{arch}-linux"


def bundle_name(path: Path) -> str:
    """The plugin's name: the folder name without .vst3."""
    name = Path(path).name
    return name[:-len(SUFFIX)] if name.endswith(SUFFIX) else name


@dataclass(frozen=True)
class BundleLayout:
    """Paths inside one bundle folder (which need not exist yet).

    `plugin` names the plugin when the folder is not named after it (a bundle
    being assembled in a hidden staging folder).
    """

    path: Path
    plugin: str | None = None

    @classmethod
    def named(cls, folder: Path, name: str) -> BundleLayout:
        """The bundle of plugin `name` inside `folder`: folder/<name>.vst3."""
        return cls(Path(folder) / f"{name}{SUFFIX}")

    @property
    def name(self) -> str:
        return self.plugin or bundle_name(self.path)

    @property
    def has_suffix(self) -> bool:
        return self.path.name.endswith(SUFFIX)

    @property
    def contents(self) -> Path:
        return self.path / CONTENTS

    @property
    def resources(self) -> Path:
        return self.contents / RESOURCES

    def code_dir(self, arch_folder: str) -> Path:
        """Contents/<arch_folder>, e.g. code_dir("aarch64-linux")."""
        return self.contents / arch_folder

    def binary_in(self, arch_folder: str) -> Path:
        """Where the loader looks for the code: Contents/<arch_folder>/<Name>.so."""
        return self.code_dir(arch_folder) / f"{self.name}.so"

    def binary(self, arch: str) -> Path:
        """The plugin binary for a CPU: Contents/<arch>-linux/<Name>.so."""
        return self.binary_in(arch_dir(arch))

    def legacy_code_dir(self, arch: str) -> Path | None:
        """The older JUCE code folder for `arch` when the bundle has one."""
        legacy = LEGACY_ARCH_DIRS.get(arch)
        return self.code_dir(legacy) if legacy and self.code_dir(legacy).is_dir() else None

    def code_folders(self) -> list[str]:
        """Names of the <arch>-linux folders present, sorted."""
        if not self.contents.is_dir():
            return []
        return sorted(p.name for p in self.contents.glob("*-linux") if p.is_dir())

    def binaries(self) -> list[Path]:
        """The plugin binary of every architecture present, sorted."""
        return sorted(self.contents.glob(f"*-linux/{self.name}.so"))

    def models(self) -> list[Path]:
        """The model files in Resources (not the external data, *.data, nor the tensor
        roles, *.roles, that travel beside a model)."""
        return sorted(p for p in self.resources.glob("*") if p.suffix not in (".data", ".roles"))

    def relative(self, path: Path) -> str:
        """A path inside the bundle as problems and logs show it: Contents/..."""
        return Path(path).relative_to(self.path).as_posix()

    def files(self) -> Iterator[Path]:
        """Every file of the bundle, sorted, links included (not followed into folders)."""
        for root, dirs, files in os.walk(self.path):
            dirs.sort()
            for name in sorted(files):
                yield Path(root, name)

    def describe_code_folders(self) -> str:
        """A note naming the code folders present, e.g. ' (it has Contents/x86_64-linux)', or ''."""
        found = self.code_folders()
        return f" (it has {', '.join(f'{CONTENTS}/{f}' for f in found)})" if found else ""
