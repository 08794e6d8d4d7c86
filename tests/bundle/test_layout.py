"""The bundle layout type: the one place that spells <Name>.vst3's folders."""

from __future__ import annotations

from pathlib import Path

from elkbuild.bundle.layout import BundleLayout, arch_dir, bundle_name


def test_paths_of_a_bundle(tmp_path: Path):
    layout = BundleLayout.named(tmp_path, "Fuzz")
    assert layout.path == tmp_path / "Fuzz.vst3" and layout.name == "Fuzz" and layout.has_suffix
    assert layout.binary("aarch64") == tmp_path / "Fuzz.vst3" / "Contents" / "aarch64-linux" / "Fuzz.so"
    assert layout.resources == tmp_path / "Fuzz.vst3" / "Contents" / "Resources"
    assert layout.relative(layout.binary("x86_64")) == "Contents/x86_64-linux/Fuzz.so"
    assert arch_dir("aarch64") == "aarch64-linux" and bundle_name(Path("a/Fuzz.vst3")) == "Fuzz"


def test_a_staged_copy_keeps_the_plugin_name(tmp_path: Path):
    staged = BundleLayout(tmp_path / ".Fuzz.vst3.new-1234", plugin="Fuzz")
    assert staged.binary_in("aarch64-linux").name == "Fuzz.so"


def test_what_a_bundle_holds(tmp_path: Path):
    layout = BundleLayout.named(tmp_path, "Fuzz")
    assert layout.code_folders() == [] and layout.binaries() == [] and layout.describe_code_folders() == ""
    legacy = layout.code_dir("arm64-linux")
    legacy.mkdir(parents=True)
    (legacy / "Fuzz.so").write_bytes(b"")
    layout.resources.mkdir()
    (layout.resources / "model.onnx").write_bytes(b"")
    assert layout.legacy_code_dir("aarch64") == legacy and layout.legacy_code_dir("x86_64") is None
    assert layout.binaries() == [legacy / "Fuzz.so"] and layout.models() == [layout.resources / "model.onnx"]
    assert layout.describe_code_folders() == " (it has Contents/arm64-linux)"
    assert [layout.relative(p) for p in layout.files()] == ["Contents/Resources/model.onnx",
                                                           "Contents/arm64-linux/Fuzz.so"]
