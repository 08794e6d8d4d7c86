"""The layered project configuration: precedence, provenance, and validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import assert_one_line_error, run_task
from elkbuild.config import CLI_SOURCE, DEFAULT_SOURCE, PROJECT_FILE, load_config
from elkbuild.errors import ConfigError, UsageError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    write(root / PROJECT_FILE, """
boards:
  studio:
    host: studio-pi.local
    os_version: 0.11
sushi:
  os_version: "1.x"
""")
    return root


def test_defaults_apply_without_any_file(tmp_path: Path) -> None:
    cfg = load_config(tmp_path, env={})
    assert cfg.get("sushi.os_version") == "1.x"
    assert cfg.origin("sushi.os_version") == DEFAULT_SOURCE
    assert cfg.boards == {}
    assert cfg.build_dir == tmp_path.resolve() / "build"


def test_each_layer_overrides_the_one_below(project: Path, tmp_path: Path) -> None:
    user = write(tmp_path / "user.yaml", "boards: {studio: {port: 2200, user: alice}}\n")
    env = {"ELKBUILD_USER_CONFIG": str(user), "ELKBUILD_BOARDS__STUDIO__PORT": "2201"}
    cfg = load_config(project, overrides={"boards.studio.user": "bob"}, env=env)
    board = cfg.board("studio")
    assert board.host == "studio-pi.local"            # project file
    assert board.os_version == "0.11"                 # float 0.11 in YAML, normalised
    assert board.port == 2201                         # environment beats user file
    assert board.user == "bob"                        # command line beats everything
    assert board.plugin_dir == "/home/mind/plugins"   # board_defaults
    assert cfg.origin("boards.studio.host") == str(project / PROJECT_FILE)
    assert cfg.origin("boards.studio.port") == "ELKBUILD_BOARDS__STUDIO__PORT"
    assert cfg.origin("boards.studio.user") == CLI_SOURCE
    assert cfg.origin("board_defaults.keep_releases") == DEFAULT_SOURCE


def test_user_file_beats_project_file(project: Path, tmp_path: Path) -> None:
    user = write(tmp_path / "user.yaml", "sushi: {os_version: '0.11'}\n")
    cfg = load_config(project, env={"ELKBUILD_USER_CONFIG": str(user)})
    assert cfg.get("sushi.os_version") == "0.11"
    assert cfg.origin("sushi.os_version") == str(user)


def test_board_for_host_uses_defaults_and_known_boards(project: Path) -> None:
    cfg = load_config(project, env={})
    adhoc = cfg.board_for_host("elk-pi.local")
    assert (adhoc.user, adhoc.port, adhoc.os_version) == ("mind", 22, "1.x")
    known = cfg.board_for_host("studio-pi.local")
    assert known.name == "studio" and known.os_version == "0.11"
    assert cfg.board_for_host("elk-pi.local", port=2222, os_version_="0.11").port == 2222
    with pytest.raises(UsageError, match="--host"):
        cfg.board_for_host("bad host;rm")


def test_unknown_board_is_a_usage_error(project: Path) -> None:
    with pytest.raises(UsageError, match="known: studio"):
        load_config(project, env={}).board("stuido")


def test_error_names_file_key_value_and_rule(tmp_path: Path) -> None:
    write(tmp_path / PROJECT_FILE, "boards:\n  studio:\n    host: a\n    os_version: '2.0'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, env={})
    error = caught.value
    assert error.source == str(tmp_path.resolve() / PROJECT_FILE)
    assert error.key == "boards.studio.os_version"
    assert error.found == "2.0"
    assert "'0.11'" in error.allowed and "'1.x'" in error.allowed


# Bad project files: each must give ONE line naming the file and the key, exit 1.
BAD_PROJECT_FILES = {
    "os-version": ("boards: {studio: {host: a, os_version: '0.10'}}", "boards.studio.os_version"),
    "port-range": ("boards: {studio: {host: a, port: 70000}}", "boards.studio.port"),
    "port-type": ("boards: {studio: {host: a, port: ssh}}", "boards.studio.port"),
    "host-missing": ("boards: {studio: {user: mind}}", "boards.studio.host"),
    "typo-key": ("boards: {studio: {host: a, hots: b}}", "boards.studio.hots"),
    "auth-policy": ("boards: {studio: {host: a, auth: kerberos}}", "boards.studio.auth"),
    "relative-plugin-dir": ("boards: {studio: {host: a, plugin_dir: plugins}}",
                            "boards.studio.plugin_dir"),
    "dotdot-release-root": ("boards: {studio: {host: a, release_root: /udata/../etc}}",
                            "boards.studio.release_root"),
    "sushi-version": ("sushi: {os_version: 2}", "sushi.os_version"),
    "unknown-section": ("board: {studio: {host: a}}", "board"),
    "keep-zero": ("board_defaults: {keep_releases: 0}", "board_defaults.keep_releases"),
    "install-dir-type": ("project: {plugin_install_dir: 5}", "project.plugin_install_dir"),
    "board-name": ("boards: {'my board': {host: a}}", "boards.my board"),
    "section-not-mapping": ("boards: [a, b]", "boards"),
    "yaml-syntax": ("boards:\n  studio: {host: a\n", "is not valid YAML"),
    "not-a-mapping": ("- just\n- a list\n", "must be a mapping"),
}


@pytest.mark.parametrize("name", sorted(BAD_PROJECT_FILES))
def test_bad_project_file_gives_one_line(tmp_path: Path, name: str) -> None:
    text, key = BAD_PROJECT_FILES[name]
    write(tmp_path / PROJECT_FILE, text + "\n")
    result = run_task("config", project=tmp_path)
    line = assert_one_line_error(result, str(tmp_path / PROJECT_FILE), key)
    assert line.startswith("elkbuild: error:")


def test_bad_user_file_names_the_user_file(tmp_path: Path) -> None:
    user = write(tmp_path / "me.yaml", "board_defaults: {auth: telnet}\n")
    result = run_task("config", project=tmp_path, env={"ELKBUILD_USER_CONFIG": str(user)})
    assert_one_line_error(result, str(user), "board_defaults.auth", "'telnet'")


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    result = run_task("config", project=tmp_path, env={"ELKBUILD_SUSHI__OS_VERSION": "0.10"})
    assert_one_line_error(result, "ELKBUILD_SUSHI__OS_VERSION", "sushi.os_version", "'0.10'")


def test_verbose_adds_the_traceback(tmp_path: Path) -> None:
    write(tmp_path / PROJECT_FILE, "sushi: {os_version: 3}\n")
    result = run_task("config", "--verbose", project=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "sushi.os_version" in result.stderr


def test_config_task_reports_origins_as_json(tmp_path: Path) -> None:
    write(tmp_path / PROJECT_FILE, "boards: {studio: {host: studio.local}}\n")
    result = run_task("config", "--json", project=tmp_path,
                      env={"ELKBUILD_BOARDS__STUDIO__PORT": "2022"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["boards.studio.host"] == {"value": "studio.local",
                                            "origin": str(tmp_path / PROJECT_FILE)}
    assert report["boards.studio.port"] == {"value": 2022,
                                            "origin": "ELKBUILD_BOARDS__STUDIO__PORT"}
    assert report["sushi.os_version"]["origin"] == DEFAULT_SOURCE


def test_config_task_unknown_key_is_usage_error(tmp_path: Path) -> None:
    result = run_task("config", "--key", "nothing.here", project=tmp_path)
    assert_one_line_error(result, "nothing.here", code=2)


# --------------------------------------------------------------------------- flags as the top layer

@pytest.fixture
def task_env(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The task layer's view: this project, a user file, no ELKBUILD_* from outside."""
    import os

    for name in [n for n in os.environ if n.startswith("ELKBUILD_")]:
        monkeypatch.delenv(name)
    user = write(tmp_path / "user.yaml", "boards: {studio: {port: 2200, user: alice}}\n")
    monkeypatch.setenv("ELKBUILD_PROJECT_DIR", str(project))
    monkeypatch.setenv("ELKBUILD_USER_CONFIG", str(user))
    return user


def test_a_flag_beats_env_beats_user_file_beats_project_file(project: Path, task_env: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.shell import load, load_for_boards

    cfg = load()
    assert cfg.board("studio").port == 2200 and cfg.origin("boards.studio.port") == str(task_env)
    assert cfg.origin("boards.studio.host") == str(project / PROJECT_FILE)
    monkeypatch.setenv("ELKBUILD_BOARDS__STUDIO__PORT", "2201")
    assert load().board("studio").port == 2201
    cfg = load_for_boards(["studio"], port=2202, os_version="1.x")
    board = cfg.board("studio")
    assert (board.port, board.os_version, board.user) == (2202, "1.x", "alice")
    assert cfg.origin("boards.studio.port") == CLI_SOURCE
    assert cfg.origin("boards.studio.os_version") == CLI_SOURCE
    assert cfg.origin("boards.studio.user") == str(task_env)
    cfg = load({"toolchain": "elk-sdk-1.0.0", "sushi.os_version": None})
    assert cfg.toolchain == "elk-sdk-1.0.0" and cfg.origin("toolchain") == CLI_SOURCE
    assert cfg.origin("sushi.os_version") == str(project / PROJECT_FILE)  # not given: no layer


def test_board_flags_leave_an_ad_hoc_or_unknown_board_alone(task_env: Path) -> None:
    from tasks.shell import load_for_boards

    assert load_for_boards([], port=2202).origin("boards.studio.port") == str(task_env)
    cfg = load_for_boards(["nowhere"], port=2202)
    with pytest.raises(UsageError, match="no board named 'nowhere'"):
        cfg.board("nowhere")


def test_a_bad_flag_value_names_the_key_and_the_command_line(task_env: Path) -> None:
    from tasks.shell import load_for_boards

    with pytest.raises(ConfigError) as caught:
        load_for_boards(["studio"], os_version="2.0")
    assert CLI_SOURCE in caught.value.one_line()
    assert "boards.studio.os_version" in caught.value.one_line()


def test_the_monitor_task_connects_to_the_flagged_port(project: Path, task_env: Path) -> None:
    """`invoke monitor --board studio --port N` reaches port N (the port nobody listens on)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    write(project / PROJECT_FILE, "boards: {studio: {host: 127.0.0.1, os_version: '1.x'}}\n")
    for named in (["--board", "studio"], []):  # named, or the only board configured
        result = run_task("monitor", *named, "--port", str(free), project=project)
        assert_one_line_error(result, f"127.0.0.1:{free}")
