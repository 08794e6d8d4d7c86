"""Configuration files that are hostile or broken: one line naming the file, never a hang
or a traceback, and loading stays linear in the file's size."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_helpers import assert_one_line_error, run_task
from elkbuild.config import MAX_YAML_DEPTH, expanded_size, load_config, parse_yaml
from elkbuild.errors import ConfigError

BILLION_LAUGHS = "\n".join(
    ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    + ["project: *a9"]) + "\n"


def _project(tmp_path: Path, text: str | bytes) -> Path:
    target = tmp_path / "elkbuild.yaml"
    (target.write_bytes if isinstance(text, bytes) else target.write_text)(text)
    return tmp_path


CASES = {
    "alias bomb": (BILLION_LAUGHS, ["elkbuild.yaml", "aliases are expanded"]),
    "self-containing alias": ("project: &me [*me]\n", ["elkbuild.yaml", "contains itself"]),
    "deep nesting": ("project: " + "[" * 20000 + "]" * 20000 + "\n",
                     ["elkbuild.yaml:1", f"deeper than {MAX_YAML_DEPTH} levels"]),
    "deep mapping": ("".join(f"{'  ' * i}k{i}:\n" for i in range(100)) + "  " * 100 + "x: 1\n",
                     ["elkbuild.yaml", "deeper than"]),
    "not UTF-8": (b"boards:\n  studio:\n    host: caf\xe9\n", ["elkbuild.yaml", "not UTF-8"]),
    "YAML syntax": ("boards: [unclosed\n", ["elkbuild.yaml:", "not valid YAML"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_hostile_project_file_is_one_line(tmp_path, name):
    text, needles = CASES[name]
    result = run_task("config", project=_project(tmp_path, text), timeout=60)
    assert_one_line_error(result, "elkbuild: error:", *needles)


def test_a_folder_named_like_the_project_file_is_refused(tmp_path):
    (tmp_path / "elkbuild.yaml").mkdir()
    result = run_task("config", project=tmp_path)
    assert_one_line_error(result, "elkbuild.yaml", "is not a file")


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path):
    with pytest.raises(ConfigError, match="larger than 4 MiB"):
        parse_yaml("#" * (4 * 1024 * 1024 + 1), tmp_path / "big.yaml")


def test_shared_aliases_count_once_per_use_and_cycles_are_found():
    leaf = [1, 2, 3]
    assert expanded_size({"a": leaf, "b": leaf}) == 1 + 2 * 4
    loop: list = []
    loop.append(loop)
    assert expanded_size(loop) is None


def test_a_later_layer_replacing_a_section_takes_its_origins(tmp_path):
    _project(tmp_path, "boards:\n  studio:\n    host: a.local\n    port: 2200\n")
    env = {"ELKBUILD_BOARDS__STUDIO__PORT": "2300",
           "ELKBUILD_USER_CONFIG": str(tmp_path / "none.yaml")}
    cfg = load_config(tmp_path, {"boards.studio.host": "b.local"}, env=env)
    assert cfg.origin("boards.studio.host") == "command line"
    assert cfg.origin("boards.studio.port") == "ELKBUILD_BOARDS__STUDIO__PORT"
    assert cfg.get("boards.studio.port") == 2300


def test_a_list_where_a_section_belongs_is_reported_not_replaced(tmp_path):
    _project(tmp_path, "boards: [a, b]\n")
    user = tmp_path / "user.yaml"
    user.write_text("boards:\n  studio:\n    host: studio.local\n")
    result = run_task("config", project=tmp_path, env={"ELKBUILD_USER_CONFIG": str(user)})
    assert_one_line_error(result, "elkbuild.yaml", "boards", "must be a mapping", "user.yaml")
