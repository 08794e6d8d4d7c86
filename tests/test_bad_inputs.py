"""Bad input of every kind a user can give — project file, user file, environment,
rigs, Sushi JSON files, models, bundles and command-line flags — is one
`elkbuild: error:` line naming the file or flag and the key, exit 1 (2 for the
command line), no traceback, and nothing written to disk or sent to a board.

Each case runs the real command line (about 0.5 s each). Boards named here listen
on a closed port: reaching for the network at all would show as "cannot reach"
instead of the expected message.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from cli_helpers import REPO, assert_one_line_error, run_task
from deploy.helpers import make_bundle


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PORT = _closed_port()
BOARD = f"boards:\n  studio:\n    host: 127.0.0.1\n    port: {PORT}\n    os_version: '1.x'\n"
RIG = ("host:\n  samplerate: 48000\ntracks:\n  - name: main\n    channels: 2\n"
       "    inputs: [0]\n    outputs: [0]\n    plugins:\n"
       "      - {name: eq, uid: sushi.testing.equalizer}\n")
CONFIG = '{"host_config": {"samplerate": 48000}, "tracks": []}'
DEEP_YAML = "a: " + "[" * 5000 + "]" * 5000 + "\n"
DEEP_JSON = '{"tracks": ' + "[" * 5000 + "]" * 5000 + "}"
HUGE = "9" * 5000


@dataclass
class Case:
    argv: list[str]
    needles: list[str]
    files: dict[str, str | bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    code: int = 1
    make: Callable[[Path], None] | None = None
    """Builds what plain text cannot (FIFOs, odd names, bundles)."""


def _project(text: str) -> dict[str, str | bytes]:
    return {"elkbuild.yaml": text}


def _fifo(path: str) -> Callable[[Path], None]:
    return lambda root: os.mkfifo(root / path)


def _folder(path: str) -> Callable[[Path], None]:
    return lambda root: (root / path).mkdir(parents=True)


def _bundle(change: Callable[[Path], None]) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        change(make_bundle(root, "Gain"))
    return make


def _odd_name(bundle: Path) -> None:
    (bundle / "Contents" / os.fsdecode(b"caf\xe9.txt")).write_text("x")


def _loop(bundle: Path) -> None:
    (bundle / "Contents" / "loop").symlink_to("loop")


def _dangling(bundle: Path) -> None:
    (bundle / "Contents" / "gone").symlink_to("nowhere")


def _bundle_fifo(bundle: Path) -> None:
    os.mkfifo(bundle / "Contents" / "pipe")


DEPLOY = ["deploy", "--board", "studio", "--no-progress"]
USER = {"ELKBUILD_USER_CONFIG": "{root}/user.yaml"}

CASES: dict[str, Case] = {
    # ---- the project file
    "project: not UTF-8": Case(["config"], ["elkbuild.yaml", "not UTF-8"],
                               _project(b"boards:\n  a:\n    host: caf\xe9\n")),  # type: ignore[arg-type]
    "project: YAML syntax": Case(["config"], ["elkbuild.yaml:", "not valid YAML"],
                                 _project("boards: [unclosed\n")),
    "project: nested too deep": Case(["config"], ["elkbuild.yaml", "deeper than 64"], _project(DEEP_YAML)),
    "project: alias loop": Case(["config"], ["elkbuild.yaml", "contains itself"],
                                _project("project: &me [*me]\n")),
    "project: a list": Case(["config"], ["elkbuild.yaml", "must be a mapping"], _project("- a\n- b\n")),
    "project: a folder": Case(["config"], ["elkbuild.yaml", "not a file"], make=_folder("elkbuild.yaml")),
    "project: boards as a list": Case(["config"], ["elkbuild.yaml", "boards"], _project("boards: [a, b]\n")),
    "project: os_version": Case(["config"], ["elkbuild.yaml", "boards.studio.os_version", "'0.10'"],
                                _project(BOARD.replace("'1.x'", "'0.10'"))),
    "project: port text": Case(["config"], ["elkbuild.yaml", "boards.studio.port", "'abc'"],
                               _project(BOARD.replace(str(PORT), "abc"))),
    "project: port range": Case(["config"], ["elkbuild.yaml", "boards.studio.port", "70000"],
                                _project(BOARD.replace(str(PORT), "70000"))),
    "project: 5000-digit number": Case(["config"], ["elkbuild.yaml:", "5000 digits"],
                                       _project(BOARD.replace(str(PORT), HUGE))),
    "project: lone surrogate": Case(["config"], ["elkbuild.yaml:", "unpaired surrogate"],
                                    _project('boards:\n  studio:\n    host: "a\\ud800"\n')),
    "project: auth": Case(["config"], ["elkbuild.yaml", "auth", "'magic'"],
                          _project(BOARD + "    auth: magic\n")),
    "project: keep_releases": Case(["config"], ["elkbuild.yaml", "keep_releases"],
                                   _project(BOARD + "    keep_releases: 0\n")),
    "project: connect_timeout": Case(["config"], ["elkbuild.yaml", "connect_timeout"],
                                     _project(BOARD + "    connect_timeout: -1\n")),
    "project: toolchain": Case(["build", "--dry-run"], ["elkbuild.yaml", "toolchain", "'nope'"],
                               _project("toolchain: nope\n")),
    "project: sushi os": Case(["config"], ["elkbuild.yaml", "sushi.os_version"],
                              _project("sushi:\n  os_version: banana\n")),
    "project: a board as text": Case(["config"], ["elkbuild.yaml", "boards.studio"],
                                     _project("boards:\n  studio: elk-pi.local\n")),
    # ---- the user file
    "user: not UTF-8": Case(["config"], ["user.yaml", "not UTF-8"],
                            {"user.yaml": b"boards:\n  a:\n    host: caf\xe9\n"}, USER),
    "user: YAML syntax": Case(["config"], ["user.yaml:", "not valid YAML"],
                              {"user.yaml": "sushi: {os_version\n"}, USER),
    "user: os_version": Case(["config"], ["user.yaml", "sushi.os_version"],
                             {"user.yaml": "sushi:\n  os_version: '2.0'\n"}, USER),
    "user: a folder": Case(["config"], ["user.yaml", "not a file"], env=USER, make=_folder("user.yaml")),
    "user: boards as a list": Case(["config"], ["user.yaml", "boards"],
                                   {"user.yaml": "boards: [x]\n"}, USER),
    "user: nested too deep": Case(["config"], ["user.yaml", "deeper than 64"],
                                  {"user.yaml": DEEP_YAML}, USER),
    # ---- the environment
    "env: port text": Case(["config"], ["ELKBUILD_BOARDS__STUDIO__PORT", "boards.studio.port"],
                           _project(BOARD), {"ELKBUILD_BOARDS__STUDIO__PORT": "abc"}),
    "env: 5000-digit port": Case(["config"], ["ELKBUILD_BOARDS__STUDIO__PORT", "characters)"],
                                 _project(BOARD), {"ELKBUILD_BOARDS__STUDIO__PORT": HUGE}),
    "env: os_version": Case(["config"], ["ELKBUILD_SUSHI__OS_VERSION", "sushi.os_version"],
                            env={"ELKBUILD_SUSHI__OS_VERSION": "banana"}),
    "env: toolchain": Case(["build", "--dry-run"], ["ELKBUILD_TOOLCHAIN", "toolchain"],
                           env={"ELKBUILD_TOOLCHAIN": "nope"}),
    "env: keep_releases": Case(["config"], ["ELKBUILD_BOARDS__STUDIO__KEEP_RELEASES"],
                               _project(BOARD), {"ELKBUILD_BOARDS__STUDIO__KEEP_RELEASES": "-1"}),
    "env: boards as text": Case(["config"], ["ELKBUILD_BOARDS", "boards"], env={"ELKBUILD_BOARDS": "x"}),
    # ---- rigs
    "rig: not UTF-8": Case(["sushi-config", "--rig", "{root}/r.yaml", "--out", "{root}/o.json"],
                           ["r.yaml", "not UTF-8"], {"r.yaml": b"tracks:\n  - name: caf\xe9\n"}),
    "rig: YAML syntax": Case(["sushi-config", "--rig", "{root}/r.yaml", "--out", "{root}/o.json"],
                             ["r.yaml:", "not valid YAML"], {"r.yaml": "tracks: [\n"}),
    "rig: nested too deep": Case(["sushi-config", "--rig", "{root}/r.yaml", "--out", "{root}/o.json"],
                                 ["r.yaml", "deeper than 64"], {"r.yaml": DEEP_YAML}),
    "rig: lone surrogate": Case(["sushi-config", "--rig", "{root}/r.yaml", "--out", "{root}/o.json"],
                                ["r.yaml:", "unpaired surrogate"],
                                {"r.yaml": RIG.replace("name: main", 'name: "m\\ud800"')}),
    "rig: 5000-digit number": Case(["sushi-config", "--rig", "{root}/r.yaml", "--out", "{root}/o.json"],
                                   ["r.yaml:", "digits"], {"r.yaml": RIG.replace("48000", HUGE)}),
    "rig: channels and buses": Case(["sushi-config", "--rig", "{root}/r.yaml", "--out", "{root}/o.json"],
                                    ["r.yaml", "tracks[0]"],
                                    {"r.yaml": RIG.replace("channels: 2", "channels: 2\n    buses: 2")}),
    "rig: unknown project": Case(["sushi-config", "--rig", "{root}/r.yaml", "--out", "{root}/o.json"],
                                 ["r.yaml", "NoSuchPlugin"],
                                 {"r.yaml": RIG.replace("{name: eq, uid: sushi.testing.equalizer}",
                                                        "{project: NoSuchPlugin}")}),
    "rig: missing": Case(["sushi-config", "--rig", "{root}/nothing.yaml", "--out", "{root}/o.json"],
                         ["nothing.yaml"], code=2),
    "rig: a folder": Case(["sushi-config", "--rig", "{root}/r.yaml", "--out", "{root}/o.json"],
                          ["r.yaml", "is a folder"], make=_folder("r.yaml"), code=2),
    "rig: a list": Case(["sushi-config", "--rig", "{root}/r.yaml", "--out", "{root}/o.json"],
                        ["r.yaml"], {"r.yaml": "- a\n"}),
    "rig: samplerate text": Case(["sushi-config", "--rig", "{root}/r.yaml", "--out", "{root}/o.json"],
                                 ["r.yaml", "samplerate"], {"r.yaml": RIG.replace("48000", "fast")}),
    "rig: 0.11 lacks initial state": Case(
        ["sushi-config", "--os", "0.11", "--rig", "{root}/r.yaml", "--out", "{root}/o.json"],
        ["r.yaml", "0.11"], {"r.yaml": RIG.replace("uid: sushi.testing.equalizer}",
                                                   "uid: sushi.testing.equalizer, bypassed: true}")}),
    # ---- Sushi JSON files (sushi-check)
    "json: not UTF-8": Case(["sushi-check", "{root}/c.json"], ["c.json", "not UTF-8"],
                            {"c.json": b'{"host_config": {"samplerate": 4\xff8000}}'}),
    "json: syntax": Case(["sushi-check", "{root}/c.json"], ["c.json:1:", "invalid JSON"],
                         {"c.json": '{"tracks": [}'}),
    "json: nested too deep": Case(["sushi-check", "{root}/c.json"], ["c.json", "deeper than 64"],
                                  {"c.json": DEEP_JSON}),
    "json: 5000-digit number": Case(["sushi-check", "{root}/c.json"], ["c.json", "too big"],
                                    {"c.json": CONFIG.replace("48000", HUGE)}),
    "json: out of a double's range": Case(["sushi-check", "{root}/c.json"], ["c.json", "1e400"],
                                          {"c.json": CONFIG.replace("48000", "1e400")}),
    "json: NaN": Case(["sushi-check", "{root}/c.json"], ["c.json", "NaN"],
                      {"c.json": CONFIG.replace("48000", "NaN")}),
    "json: lone surrogate": Case(["sushi-check", "{root}/c.json"], ["c.json", "unpaired surrogate"],
                                 {"c.json": CONFIG.replace('"tracks"', '"tr\\ud800acks"')}),
    "json: missing": Case(["sushi-check", "{root}/none.json"], ["none.json", "no such file"]),
    "json: a folder": Case(["sushi-check", "{root}/c.json"], ["c.json", "folder"], make=_folder("c.json")),
    # ---- models and configs given to deploy
    "model: missing": Case(DEPLOY + ["--model", "{root}/none.onnx"], ["none.onnx", "no such file"],
                           _project(BOARD), code=2),
    "model: a folder": Case(DEPLOY + ["--model", "{root}/m.onnx"], ["m.onnx", "not a regular file"],
                            _project(BOARD), make=_folder("m.onnx"), code=2),
    "model: a FIFO": Case(DEPLOY + ["--model", "{root}/m.onnx"], ["m.onnx", "not a regular file"],
                          _project(BOARD), make=_fifo("m.onnx"), code=2),
    "model: a newline in its name": Case(DEPLOY + ["--model", "{root}/a\nb.onnx"], ["control character"],
                                         {**_project(BOARD), "a\nb.onnx": "x"}, code=2),
    "deploy config: not UTF-8": Case(DEPLOY + ["--config", "{root}/c.json"], ["c.json", "not UTF-8"],
                                     {**_project(BOARD), "c.json": b'{"a": "\xff"}'}),
    "deploy config: syntax": Case(DEPLOY + ["--config", "{root}/c.json"], ["c.json", "invalid JSON"],
                                  {**_project(BOARD), "c.json": "{"}),
    "deploy config: nested too deep": Case(DEPLOY + ["--config", "{root}/c.json"],
                                           ["c.json", "deeper than 64"],
                                           {**_project(BOARD), "c.json": DEEP_JSON}),
    "deploy config: missing": Case(DEPLOY + ["--config", "{root}/none.json"], ["none.json"],
                                   _project(BOARD), code=2),
    # ---- bundles given to deploy
    "bundle: missing": Case(DEPLOY + ["--plugin", "{root}/None.vst3"], ["None.vst3"], _project(BOARD),
                            code=2),
    "bundle: a FIFO inside": Case(DEPLOY + ["--plugin", "{root}/Gain.vst3"], ["pipe", "FIFO"],
                                  _project(BOARD), make=_bundle(_bundle_fifo), code=2),
    "bundle: a symlink loop": Case(DEPLOY + ["--plugin", "{root}/Gain.vst3"], ["loop", "symlink loop"],
                                   _project(BOARD), make=_bundle(_loop), code=2),
    "bundle: a dangling link": Case(DEPLOY + ["--plugin", "{root}/Gain.vst3"], ["gone"],
                                    _project(BOARD), make=_bundle(_dangling), code=2),
    "bundle: an undecodable name": Case(DEPLOY + ["--plugin", "{root}/Gain.vst3"], ["Gain.vst3"],
                                        _project(BOARD), make=_bundle(_odd_name), code=2),
    # ---- command-line flags
    "flag: --health-seconds text": Case(DEPLOY + ["--health-seconds", "abc"], ["--health-seconds"],
                                        _project(BOARD), code=2),
    "flag: --port text": Case(["deploy", "--host", "h", "--port", "abc"], ["--port 'abc'"], code=2),
    "flag: --host with no value": Case(["deploy", "--host"], ["--host needs a value"], _project(BOARD),
                                       code=2),
    "flag: --os-version": Case(["deploy", "--host", "127.0.0.1", "--os-version", "banana"],
                               ["banana"], _project(BOARD), code=2),
    "flag: unknown board": Case(["deploy", "--board", "nowhere"], ["nowhere"], _project(BOARD), code=2),
    "flag: unknown flag": Case(["status", "--bogus"], ["unknown flag --bogus"], code=2),
    "flag: unknown task": Case(["no-such-task"], ["unknown task"], code=2),
    "flag: --multicore-processing text": Case(DEPLOY + ["--multicore-processing", "x"],
                                              ["--multicore-processing"], _project(BOARD), code=2),
    "flag: sushi-config --os": Case(["sushi-config", "--os", "2.0", "--rig", "{root}/r.yaml",
                                     "--out", "{root}/o.json"], ["2.0"], {"r.yaml": RIG}, code=2),
    "flag: monitor --duration": Case(["monitor", "--board", "studio", "--duration", "-3"], ["--duration"],
                                     _project(BOARD), code=2),
}


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        out[str(path.relative_to(root))] = (info.st_mtime_ns, info.st_size)
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_changes_nothing(tmp_path, name):
    case = CASES[name]
    root = tmp_path / "p"
    root.mkdir()
    for rel, content in case.files.items():
        target = root / rel
        (target.write_bytes if isinstance(content, bytes) else target.write_text)(content)
    if case.make is not None:
        case.make(root)
    fill = lambda text: text.replace("{root}", str(root))  # noqa: E731
    before, repo_before = _listing(root), _listing(REPO / "sushi-configs")
    result = run_task(*map(fill, case.argv), project=root,
                      env={k: fill(v) for k, v in case.env.items()}, timeout=60)
    line = assert_one_line_error(result, "elkbuild: error:", *case.needles, code=case.code)
    assert "cannot reach" not in line, line
    assert _listing(root) == before, "bad input changed files"
    assert _listing(REPO / "sushi-configs") == repo_before


def test_the_suite_covers_every_kind_of_input():
    kinds = {name.split(":")[0] for name in CASES}
    assert kinds >= {"project", "user", "env", "rig", "json", "model", "deploy config", "bundle", "flag"}
    assert len(CASES) >= 60
