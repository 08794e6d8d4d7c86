"""The emulated board's logic that needs no running board: cache keys, settings,
known_hosts handling, refusals, and the board tasks' plain outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from elkbuild.build.toolchains import BOARD_TOOLCHAIN, get_toolchain
from elkbuild.emulated_board import EmulatedBoard, images
from elkbuild.errors import BoardError, UsageError
from elkbuild.executor import LocalExecutor

REPO = Path(__file__).resolve().parents[2]


def test_cache_keys_are_stable_and_name_both_layers(tmp_path):
    assert images.rootfs_key() == images.rootfs_key()
    assert images.assets_key() == images.assets_key()
    layers = images.cached_layers(tmp_path)
    assert layers.rootfs.name == f"rootfs-{images.rootfs_key()}"
    assert layers.assets.name == f"assets-{images.assets_key()}"
    assert layers.rootfs.parent == tmp_path / "board"


def test_assets_key_follows_the_compiler_that_builds_them(monkeypatch):
    """A change of the board toolchain's compiler makes a new assets layer."""
    before = images.assets_key()
    toolchain = get_toolchain(BOARD_TOOLCHAIN)
    other = replace(toolchain, definition={**toolchain.definition, "gcc_version": "12"})
    monkeypatch.setattr(images, "get_toolchain", lambda name: other if name == BOARD_TOOLCHAIN else None)
    assert images.assets_key() != before


def test_every_program_source_exists_and_board_package_set_is_minimal():
    for sources, _flags in images.PROGRAMS.values():
        for name in sources:
            assert (images.SOURCES / name).is_file(), name
    # What the board profile `emulated` promises as system libraries, and no more.
    assert images.ROOTFS_RECIPE["packages"] == ["openssh-server", "libstdc++6", "libasound2"]
    assert images.ROOTFS_RECIPE["architecture"] == "arm64"


def test_settings_are_remembered_per_instance(tmp_path):
    board = EmulatedBoard(LocalExecutor(), tmp_path, name="studio", port=2301, os_version="0.11")
    board._save_settings()
    again = EmulatedBoard(LocalExecutor(), tmp_path, name="studio")
    assert (again.port, again.os_version) == (2301, "0.11")
    other = EmulatedBoard(LocalExecutor(), tmp_path, name="other")
    assert (other.port, other.os_version) == (2222, "1.x")


@pytest.mark.parametrize("kwargs", [{"name": "../escape"}, {"name": ""},
                                    {"os_version": "2.0"}])
def test_bad_names_and_profiles_are_refused(tmp_path, kwargs):
    with pytest.raises(UsageError):
        EmulatedBoard(LocalExecutor(), tmp_path, **kwargs)


def test_a_stopped_board_says_so(tmp_path):
    board = EmulatedBoard(LocalExecutor(), tmp_path, name="idle")
    assert not board.is_running()
    assert board.status()["running"] is False
    assert board.down() is False
    with pytest.raises(BoardError, match="not running"):
        board.path("/udata")
    with pytest.raises(BoardError, match="not running"):
        board.run(["true"])


def test_record_host_key_replaces_only_this_boards_entry(tmp_path):
    board = EmulatedBoard(LocalExecutor(), tmp_path, name="keys", port=2302)
    key_dir = board.host_key_file.parent
    key_dir.mkdir(parents=True)
    board.host_key_file.with_suffix(".pub").write_text("ssh-ed25519 AAAANEW root@elk-pi\n")
    known = tmp_path / "known_hosts"
    known.write_text("[127.0.0.1]:2302 ssh-ed25519 AAAAOLD\nelk-pi.local ssh-ed25519 AAAAPI\n")
    board.record_host_key(known)
    assert known.read_text().splitlines() == [
        "elk-pi.local ssh-ed25519 AAAAPI", "[127.0.0.1]:2302 ssh-ed25519 AAAANEW"]


def test_board_status_task_prints_json_without_a_board(tmp_path):
    env = {"ELKBUILD_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "invoke", "board-status", "--name", "ci-none",
                           "--json"], cwd=REPO, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["running"] is False and status["name"] == "ci-none"


def test_board_up_task_refuses_a_bad_profile_in_one_line(tmp_path):
    env = {"ELKBUILD_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "invoke", "board-up", "--name", "ci-bad",
                           "--os", "3.0"], cwd=REPO, capture_output=True, text=True, env=env)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "OS profile '3.0'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "board" / "instances" / "ci-bad").exists()
