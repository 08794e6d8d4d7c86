"""The ABI gate at deploy time, on the emulated board: a bundle that would not load
on the target board is refused before anything is sent, per board of a fleet."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from cli_helpers import assert_one_line_error, run_task
from deploy.helpers import X86_64, board_sh, board_tree, lock_live, make_bundle, staging_exists, \
    sushi_config, verify_current_release

HEALTH = "1.0"


@pytest.fixture
def elk(fresh_emulated_board):
    yield fresh_emulated_board
    if fresh_emulated_board.os_version != "1.x":
        fresh_emulated_board.set_profile("1.x")


def fleet_project(board, directory: Path) -> Path:
    """Two boards on the one emulated board: `old` says Elk 0.11, `new` Elk 1.x."""
    key = board.host_key_line.split()[1:3]
    known = directory / "known_hosts"
    known.write_text("".join(f"[{host}]:{board.port} {' '.join(key)}\n"
                             for host in ("127.0.0.1", "localhost")))
    (directory / "elkbuild.yaml").write_text("boards:\n" + "".join(
        f"  {name}:\n    host: {host}\n    port: {board.port}\n    os_version: '{os}'\n"
        f"    known_hosts: {known}\n    identity_file: {board.client_key}\n"
        for name, host, os in (("old", "127.0.0.1", "0.11"), ("new", "localhost", "1.x"))))
    return directory


def _deploy(project: Path, bundle: Path, config: Path, *boards: str, extra: tuple = ()):
    flags = [word for name in boards for word in ("--board", name)]
    return run_task("deploy", *flags, "--plugin", str(bundle), "--config", str(config),
                    "--health-seconds", HEALTH, *extra, project=project)


def _sushi_pid(elk) -> str:
    return board_sh(elk, "cat /tmp/elkbuild-sushi.pid 2>/dev/null; true").strip()


def test_a_bundle_too_new_for_the_board_is_refused_and_nothing_is_sent(elk, tmp_path):
    project = fleet_project(elk, tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    config = sushi_config(src / "rig.json", "Gain")
    good = make_bundle(src / "good", "Gain", size=30_000)
    too_new = make_bundle(src / "threads", "Gain", size=30_000, threads=True)  # GLIBC_2.34
    try:
        first = _deploy(project, good, config, "new")
        assert first.returncode == 0, first.stderr
        release = verify_current_release(elk)
        before, pid = board_tree(elk), _sushi_pid(elk)
        assert pid

        for extra in ((), ("--dry-run",)):
            refused = _deploy(project, too_new, config, "old", extra=extra)
            line = assert_one_line_error(refused, "Gain.vst3 cannot run on board old",
                                         "Elk Audio OS 0.11", "elk-0.11", "nothing was sent",
                                         "needs GLIBC_2.34 (e.g. pthread_create)",
                                         "glibc 2.31", "rebuild it with elk-sdk-0.11.0")
            assert "Traceback" not in line
            # the board is as it was: no lock, no staging folder, same release and Sushi
            assert not lock_live(elk) and not staging_exists(elk)
            assert board_tree(elk) == before
            assert verify_current_release(elk) == release and _sushi_pid(elk) == pid

        # the escape hatch says so, and then would send the bundle
        unchecked = _deploy(project, too_new, config, "old", extra=("--dry-run", "--no-abi-check"))
        assert unchecked.returncode == 0, unchecked.stderr
        assert "ABI gate skipped (--no-abi-check)" in unchecked.stderr
        assert "would send" in unchecked.stderr and "Gain.so" in unchecked.stderr
        assert board_tree(elk) == before

        # a bundle for the wrong architecture is a misfit on any board
        x86 = make_bundle(src / "x86", "Gain", size=30_000, machine=X86_64)
        assert_one_line_error(_deploy(project, x86, config, "new"), "cannot run on board new",
                              "is an ELF for x86_64", "runs aarch64")
        assert board_tree(elk) == before

        # the dry run says what the gate found where the bundle fits
        dry = _deploy(project, too_new, config, "new", extra=("--dry-run",))
        assert dry.returncode == 0, dry.stderr
        assert "ABI gate elk-1.x passed (Gain.vst3)" in dry.stderr
        assert board_tree(elk) == before
    finally:
        run_task("stop", "--board", "new", project=project)


def test_a_fleet_is_gated_per_board(elk, tmp_path):
    """glibc 2.34 fits Elk 1.x (2.35), not 0.11 (2.31): one board fails, untouched,
    the other gets the bundle."""
    project = fleet_project(elk, tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    config = sushi_config(src / "rig.json", "Gain")
    too_new = make_bundle(src, "Gain", size=30_000, threads=True)
    try:
        both = _deploy(project, too_new, config, "old", "new", extra=("--json",))
        assert both.returncode == 1, both.stderr
        result = json.loads(both.stdout.splitlines()[-1])
        by_board = {b["host"]: b for b in result["boards"]}
        assert not by_board["old"]["ok"] and by_board["old"]["files_sent"] == 0
        assert "cannot run on board old" in by_board["old"]["message"]
        assert by_board["new"]["ok"], by_board["new"]
        assert by_board["new"]["abi_gate"] == "ABI gate elk-1.x passed (Gain.vst3)"
        release = verify_current_release(elk)
        manifest = json.loads(board_sh(elk, 'cat "$1/current/manifest.json"', "/udata/elkbuild"))
        sent = manifest["files"]["plugins/Gain.vst3/Contents/aarch64-linux/Gain.so"]["sha256"]
        binary = too_new / "Contents" / "aarch64-linux" / "Gain.so"
        assert sent == hashlib.sha256(binary.read_bytes()).hexdigest()
        assert release == by_board["new"]["release"]
    finally:
        run_task("stop", "--board", "new", project=project)


def test_a_fitting_bundle_deploys_to_an_elk_0_11_board(elk, tmp_path):
    project = fleet_project(elk, tmp_path)
    elk.set_profile("0.11")
    src = tmp_path / "src"
    src.mkdir()
    config = src / "rig.json"  # Sushi 0.11's format: a track has a mode, not channels
    config.write_text(json.dumps({"host_config": {"samplerate": 48000}, "tracks": [{
        "name": "main", "mode": "stereo", "inputs": [], "outputs": [], "plugins": [
            {"path": "/home/mind/plugins/Gain.vst3", "name": "g", "type": "vst3x",
             "uid": "Gain"}]}]}))
    fits = make_bundle(src, "Gain", size=30_000)
    try:
        done = _deploy(project, fits, config, "old", extra=("--json",))
        assert done.returncode == 0, done.stderr
        (board,) = json.loads(done.stdout.splitlines()[-1])["boards"]
        assert board["ok"] and board["abi_gate"] == "ABI gate elk-0.11 passed (Gain.vst3)"
        assert verify_current_release(elk) == board["release"]
    finally:
        run_task("stop", "--board", "old", project=project)
