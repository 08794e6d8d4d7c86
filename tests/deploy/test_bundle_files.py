"""Bundles carry regular files and folders only; anything else is refused up front,
naming the path, before a byte is read (a FIFO used to hang the deploy)."""

from __future__ import annotations

import os
import socket

import pytest

from elkbuild.deploy import payload as dep
from elkbuild.errors import UsageError

from deploy.helpers import make_bundle


def _refused(bundle, *needles: str) -> str:
    with pytest.raises(UsageError) as caught:
        dep.collect_payload([bundle])
    line = caught.value.one_line()
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def test_a_fifo_is_refused_without_being_opened(tmp_path):
    bundle = make_bundle(tmp_path, "Gain")
    os.mkfifo(bundle / "Contents" / "Resources" / "pipe")
    # opening a FIFO for reading would block this test forever: a refusal proves it is not
    _refused(bundle, "Resources/pipe", "a FIFO")


def test_a_socket_is_refused(tmp_path):
    bundle = make_bundle(tmp_path, "Gain")
    path = bundle / "Contents" / "s.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        _refused(bundle, "s.sock", "a socket")


def test_a_device_is_refused(tmp_path):
    bundle = make_bundle(tmp_path, "Gain")
    (bundle / "Contents" / "null").symlink_to("/dev/null")
    _refused(bundle, "Contents/null", "character device")


def test_a_symlink_loop_is_refused(tmp_path):
    bundle = make_bundle(tmp_path, "Gain")
    (bundle / "Contents" / "loop").symlink_to("loop")
    _refused(bundle, "Contents/loop", "symlink loop")


def test_a_folder_linking_back_up_is_refused(tmp_path):
    bundle = make_bundle(tmp_path, "Gain")
    (bundle / "Contents" / "up").symlink_to("..")
    _refused(bundle, "symlink loop")


def test_a_dangling_symlink_is_refused(tmp_path):
    bundle = make_bundle(tmp_path, "Gain")
    (bundle / "Contents" / "Resources" / "gone.onnx").symlink_to("/nonexistent/model")
    _refused(bundle, "gone.onnx", "dangling symlink")


def test_an_undecodable_name_is_refused_naming_it(tmp_path):
    bundle = make_bundle(tmp_path, "Gain")
    raw = os.fsencode(bundle / "Contents" / "Resources") + b"/model-\xff.onnx"
    with open(raw, "wb") as handle:
        handle.write(b"x")
    line = _refused(bundle, "not valid UTF-8", "model-\\xff.onnx")
    assert "\udcff" not in line


def test_links_to_regular_files_and_folders_are_carried(tmp_path):
    bundle = make_bundle(tmp_path, "Gain")
    outside = tmp_path / "shared"
    outside.mkdir()
    (outside / "weights.bin").write_bytes(b"w" * 10)
    (bundle / "Contents" / "Resources" / "shared").symlink_to(outside)
    (bundle / "Contents" / "Resources" / "alias.onnx").symlink_to("model.onnx")
    files = dep.collect_payload([bundle]).files
    assert "plugins/Gain.vst3/Contents/Resources/shared/weights.bin" in files
    assert files["plugins/Gain.vst3/Contents/Resources/alias.onnx"].sha256 == \
        files["plugins/Gain.vst3/Contents/Resources/model.onnx"].sha256


def test_a_model_that_is_a_fifo_is_refused(tmp_path):
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    with pytest.raises(UsageError) as caught:
        dep.collect_payload([], models=[fifo])
    assert "not a regular file" in caught.value.one_line()
