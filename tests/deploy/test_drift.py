"""Drift on the board is found and repaired: releases share no inodes, a changed or
deleted file is sent again (size and mtime by default, SHA-256 with verify), and the
other releases kept on the board stay as they were."""

from __future__ import annotations

import time

import pytest

from elkbuild.deploy import deployer, payload as dep
from elkbuild.sushi.service import settings_for

from deploy.helpers import board_profile, board_sh, make_bundle, sushi_config, \
    verify_current_release

MODEL = "plugins/models/net.bin"
ROOT = "/udata/elkbuild"


@pytest.fixture
def elk(fresh_emulated_board):
    return fresh_emulated_board


@pytest.fixture
def setup(elk, tmp_path):
    board = board_profile(elk, tmp_path, keep_releases=5)
    src = tmp_path / "src"
    src.mkdir()
    bundle = make_bundle(src, "Gain")
    config = sushi_config(src / "rig.json", "Gain")
    model = src / "net.bin"
    yield board, bundle, config, model
    from elkbuild.board.connection import connect
    from elkbuild.sushi import service

    with connect(board) as conn:
        service.stop(conn, settings_for(board))


def _deploy(board, bundle, config, model, content: bytes, **kwargs):
    model.write_bytes(content)
    payload = dep.collect_payload([bundle], (config.name, config.read_bytes(), str(config)),
                                  [model])
    result = deployer.deploy_to_board(board, payload, settings_for(board, health_seconds=0.5),
                                      **kwargs)
    assert result.ok, result.message
    return result


def _model_in(elk, release: str) -> bytes:
    return elk.path(f"{ROOT}/releases/{release}/{MODEL}").read_bytes()


def test_tampering_one_release_leaves_the_others_and_is_repaired(elk, setup):
    board, bundle, config, model = setup
    first = _deploy(board, bundle, config, model, b"A" * 5000)
    time.sleep(1.1)  # release names and mtimes have a one-second grain
    second = _deploy(board, bundle, config, model, b"B" * 5000)
    time.sleep(1.1)
    third = _deploy(board, bundle, config, model, b"A" * 5000)
    assert third.files_linked >= 1  # taken from the board, not sent
    time.sleep(1.1)
    # one byte appended to the running release's model
    board_sh(elk, 'printf x >>"$1/current/$2"', ROOT, MODEL)
    assert _model_in(elk, first.release) == b"A" * 5000
    assert _model_in(elk, second.release) == b"B" * 5000
    again = _deploy(board, bundle, config, model, b"A" * 5000)
    assert not again.unchanged and again.files_sent == 1, again
    assert again.repaired == [MODEL] and "repaired 1 file" in again.message
    assert verify_current_release(elk) == again.release
    assert _model_in(elk, again.release) == b"A" * 5000
    assert _model_in(elk, first.release) == b"A" * 5000
    assert _model_in(elk, second.release) == b"B" * 5000
    # the tampered release is gone: no rollback can land on it
    kept = board_sh(elk, 'ls "$1/releases"', ROOT).split()
    assert third.release not in kept and first.release in kept
    # now it is truly unchanged
    assert _deploy(board, bundle, config, model, b"A" * 5000).unchanged


def test_a_deleted_file_is_sent_again(elk, setup):
    board, bundle, config, model = setup
    _deploy(board, bundle, config, model, b"A" * 5000)
    time.sleep(1.1)
    board_sh(elk, 'rm -f "$1/current/$2"', ROOT, MODEL)
    repaired = _deploy(board, bundle, config, model, b"A" * 5000)
    assert repaired.repaired == [MODEL] and repaired.files_sent == 1
    assert verify_current_release(elk) == repaired.release
    time.sleep(1.1)
    # and with other content: the copy step never trips over a missing file
    board_sh(elk, 'rm -f "$1/current/plugins/Gain.vst3/Contents/Resources/model.onnx"', ROOT)
    changed = _deploy(board, bundle, config, model, b"C" * 5000)
    assert "plugins/Gain.vst3/Contents/Resources/model.onnx" in changed.repaired
    assert verify_current_release(elk) == changed.release


def test_same_size_change_with_old_mtime_needs_verify(elk, setup):
    board, bundle, config, model = setup
    first = _deploy(board, bundle, config, model, b"A" * 5000)
    time.sleep(1.1)
    # same size, mtime put back: only a hash can tell
    board_sh(elk, 'f="$1/current/$2"; t=$(stat -c %Y "$f"); printf B | dd of="$f" bs=1 seek=10 '
                  'conv=notrunc 2>/dev/null; touch -d "@$t" "$f"', ROOT, MODEL)
    cheap = _deploy(board, bundle, config, model, b"A" * 5000)
    assert cheap.unchanged
    verified = _deploy(board, bundle, config, model, b"A" * 5000, verify=True)
    assert not verified.unchanged and verified.repaired == [MODEL]
    assert verify_current_release(elk) == verified.release != first.release
    assert _deploy(board, bundle, config, model, b"A" * 5000, verify=True).unchanged
