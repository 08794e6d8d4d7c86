"""Plugin project identity files (plugins/<Name>/plugin.yaml), as rigs use them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sushi_helpers import REPO

from elkbuild.errors import ConfigError
from elkbuild.plugin.identity import identity_path, known_projects, load_identity

GOOD = """\
name: Fuzz
manufacturer: Someone
manufacturer_code: Smon
plugin_code: Fz01
"""


def _write(tmp_path: Path, text: str, folder: str = "Fuzz") -> Path:
    path = tmp_path / folder / "plugin.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_example_project_identity_is_valid():
    identity = load_identity(identity_path(REPO / "plugins", "NeuralSaturator"))
    assert identity.name == "NeuralSaturator"
    assert identity.vst3_class_name == "NeuralSaturator"
    assert (identity.manufacturer_code, identity.plugin_code) == ("Elkb", "Nsat")
    assert identity.install_path() == "/home/mind/plugins/NeuralSaturator.vst3"
    assert "NeuralSaturator" in known_projects(REPO / "plugins")


def test_class_name_defaults_to_the_plugin_name(tmp_path: Path):
    identity = load_identity(_write(tmp_path, GOOD))
    assert identity.vst3_class_name == "Fuzz"
    assert identity.install_path("/udata/plugins") == "/udata/plugins/Fuzz.vst3"


@pytest.mark.parametrize("change,key", [
    (("plugin_code: Fz01", "plugin_code: fz01"), "plugin_code"),          # first not uppercase
    (("plugin_code: Fz01", "plugin_code: Fz0"), "plugin_code"),           # 3 characters
    (("manufacturer_code: Smon", "manufacturer_code: Sm-n"), "manufacturer_code"),
    (("name: Fuzz", "name: Fuzzz"), "name"),                              # not the folder name
    (("manufacturer: Someone\n", ""), "manufacturer"),                    # missing
    (("name: Fuzz", "name: Fuzz\ncolour: red"), "colour"),                # unknown key
    (("name: Fuzz", "name: Fuzz\nvst3_class_name: " + "x" * 64), "vst3_class_name"),
])
def test_bad_identity_names_file_and_key(change: tuple[str, str], key: str, tmp_path: Path):
    path = _write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_identity(path)
    assert caught.value.source == str(path)
    assert caught.value.key == key
    assert caught.value.one_line().startswith(f"{path}: {key}")


def test_names_that_cannot_be_bundle_names_are_refused(tmp_path: Path):
    path = _write(tmp_path, GOOD.replace("name: Fuzz", "name: Fuzz Box"), folder="Fuzz Box")
    with pytest.raises(ConfigError, match="must start with a letter"):
        load_identity(path)
