"""Boards without SFTP (Yocto images with Dropbear): transfers fall back to SCP.

The board here is an emulated board of its own whose sshd has no sftp subsystem;
the test first proves that SFTP is really refused there.
"""

from __future__ import annotations

from typing import Iterator

import paramiko
import pytest

from elkbuild.board.connection import connect
from elkbuild.deploy import deployer, payload as dep
from elkbuild.emulated_board import EmulatedBoard
from elkbuild.sushi.service import settings_for

from board_fixtures import running_board
from deploy.helpers import board_profile, board_sh, make_bundle, no_pwned_anywhere, \
    sushi_config, verify_current_release


@pytest.fixture(scope="module")
def no_sftp_board() -> Iterator[EmulatedBoard]:
    with running_board("-nosftp", sftp=False) as board:
        board.reset()
        yield board


def test_sftp_is_refused_and_transfers_use_scp(no_sftp_board, tmp_path):
    board = board_profile(no_sftp_board, tmp_path)
    with connect(board) as conn:
        with pytest.raises((paramiko.SSHException, EOFError)):
            conn.client.open_sftp()
        assert conn.executor.transfer_protocol == "scp"
        base = "/tmp/elk-scp-test"
        conn.executor.make_dirs([base, f"{base}/a b"])
        for name in ("a;touch pwned", "$(touch pwned)", "a b/`touch pwned`"):
            conn.executor.write_bytes(f"{base}/{name}", name.encode())
            assert conn.executor.read_bytes(f"{base}/{name}") == name.encode()
        with pytest.raises(FileNotFoundError):
            conn.executor.read_bytes(f"{base}/missing")
        local = tmp_path / "fetched"
        conn.executor.fetch_file(f"{base}/a;touch pwned", local)
        assert local.read_bytes() == b"a;touch pwned"
        conn.executor.run(["rm", "-rf", base])
    assert no_pwned_anywhere(no_sftp_board) == []


def test_deploy_redeploy_and_rollback_without_sftp(no_sftp_board, tmp_path):
    board = board_profile(no_sftp_board, tmp_path)
    settings = settings_for(board, health_seconds=1.0)
    src = tmp_path / "src"
    src.mkdir()
    gain = make_bundle(src, "Gain", size=50_000)
    hostile = make_bundle(src, "a;touch pwned", size=20_000)
    config = sushi_config(src / "rig.json", "Gain", "a;touch pwned")

    def payload():
        return dep.collect_payload([gain, hostile], (config.name, config.read_bytes(),
                                                     str(config)))

    try:
        first = deployer.deploy_to_board(board, payload(), settings)
        assert first.ok, first.message
        assert first.files_sent == first.files_total == 5
        assert verify_current_release(no_sftp_board) == first.release
        model = gain / "Contents" / "Resources" / "model.onnx"
        model.write_bytes(b"retrained " * 800)
        second = deployer.deploy_to_board(board, payload(), settings)
        assert second.ok, second.message
        assert (second.files_sent, second.files_linked) == (1, 4)
        assert second.bytes_sent == model.stat().st_size
        assert verify_current_release(no_sftp_board) == second.release
        mode = board_sh(no_sftp_board, 'stat -c %a "$1"/plugins/Gain.vst3/Contents/aarch64-linux/'
                                       'Gain.so', f"/udata/elkbuild/releases/{second.release}")
        assert mode.strip() == "755"
        back = deployer.rollback(board, settings)
        assert back.ok, back.message
        assert back.release == first.release
        assert verify_current_release(no_sftp_board) == first.release
        assert no_pwned_anywhere(no_sftp_board) == []
    finally:
        no_sftp_board.stop_sushi()
