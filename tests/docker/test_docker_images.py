"""Image plans and input hashes (pure), then real image builds on the real engine."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

from elkbuild.docker.engine import EngineError, image_exists, seed_suite
from elkbuild.docker.images import (
    INPUTS_LABEL,
    SDK_INSTALLER_NAME,
    TOOLCHAIN_LABEL,
    BuildPlan,
    base_image_of,
    ensure_image,
    plan_for,
    sdk_installer,
)
from elkbuild.errors import BuildError, UsageError
from elkbuild.elf import version_key
from elkbuild.executor import LocalExecutor
from elkbuild.build.toolchains import get_toolchain, read_abi


def sdk_with_url(url: str, sha256: str | None = None):
    toolchain = get_toolchain("elk-sdk-1.0.0")
    assert toolchain.sdk is not None
    return replace(toolchain, sdk=replace(toolchain.sdk, installer_url=url, installer_sha256=sha256))


# ---- pure ----------------------------------------------------------------------------


def test_base_image_is_read_from_the_dockerfile(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("# comment\nARG X=1\nFROM debian:bookworm-slim AS build\nRUN true\n")
    assert base_image_of(dockerfile) == "debian:bookworm-slim"
    dockerfile.write_text("RUN true\n")
    with pytest.raises(BuildError, match="no FROM line"):
        base_image_of(dockerfile)


def test_seeding_knows_debian_suites_only():
    assert seed_suite("debian:bookworm-slim") == "bookworm"
    assert seed_suite("debian:trixie") == "trixie"
    with pytest.raises(EngineError, match="only debian:<suite>"):
        seed_suite("ubuntu:22.04")


def test_debian_arm64_plan_carries_the_sysroot_definition(tmp_path):
    plan = plan_for(get_toolchain("debian-arm64"), tmp_path)
    assert plan.tag == "elkbuild/debian-arm64:bookworm-glibc2.31"
    assert plan.base == "debian:bookworm-slim"
    assert plan.build_args["SYSROOT"] == "/opt/sysroots/debian-arm64"
    # The cross compiler comes from the sysroot's suite (Elk 0.11's glibc 2.31).
    assert plan.build_args["SYSROOT_SUITE"] == "bullseye"
    assert plan.build_args["SYSROOT_MIRROR"] == "http://deb.debian.org/debian"
    assert plan.build_args["GCC_VERSION"] == "10"
    packages = plan.build_args["SYSROOT_PACKAGES"].split()
    assert packages[:2] == ["libc6-dev", "libstdc++-10-dev"] and "libasound2-dev" in packages
    assert plan.served_files == {}


def test_native_has_no_image_of_its_own(tmp_path):
    with pytest.raises(UsageError, match="runs in the debian-arm64 image"):
        plan_for(get_toolchain("native"), tmp_path)


def test_inputs_hash_follows_every_input(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM debian:bookworm-slim\nRUN true\n")
    installer = tmp_path / "sdk.sh"
    installer.write_text("one")
    plan = BuildPlan("t", "elkbuild/t:1", dockerfile, "debian:bookworm-slim", {"A": "1"},
                     {SDK_INSTALLER_NAME: (installer, "aa")})
    base = plan.inputs_hash("sha256:base")
    assert base == plan.inputs_hash("sha256:base")
    assert plan.inputs_hash("sha256:other-base") != base
    assert replace(plan, build_args={"A": "2"}).inputs_hash("sha256:base") != base
    assert replace(plan, served_files={SDK_INSTALLER_NAME: (installer, "bb")}).inputs_hash("sha256:base") != base
    dockerfile.write_text("FROM debian:bookworm-slim\nRUN false\n")
    assert plan.inputs_hash("sha256:base") != base


def test_local_installer_is_verified_against_a_given_sha256(tmp_path):
    installer = tmp_path / "installer.sh"
    installer.write_bytes(b"#!/bin/sh\necho sdk\n")
    good = hashlib.sha256(installer.read_bytes()).hexdigest()
    toolchain = get_toolchain("elk-sdk-1.0.0").with_installer(installer, good)
    plan = plan_for(toolchain, tmp_path)
    assert plan.served_files == {SDK_INSTALLER_NAME: (installer.resolve(), good)}
    assert plan.build_args["SDK_INSTALLER_SHA256"] == good
    assert plan.build_args["SDK_DIR"] == "/opt/elk/1.0.0"
    with pytest.raises(BuildError, match="expected " + "0" * 64):
        plan_for(get_toolchain("elk-sdk-1.0.0").with_installer(installer, "0" * 64), tmp_path)


def test_download_without_a_known_sha256_is_recorded_then_enforced(tmp_path):
    """Trust on first use, through a real (file://) URL download."""
    source = tmp_path / "published" / "elk-sdk-1.0.0.sh"
    source.parent.mkdir()
    source.write_bytes(b"#!/bin/sh\n" + b"x" * 300_000)
    expected = hashlib.sha256(source.read_bytes()).hexdigest()
    toolchain = sdk_with_url(source.as_uri())
    cache = tmp_path / "cache"
    progress: list[int] = []
    path, sha = sdk_installer(toolchain, cache, on_progress=lambda done, total: progress.append(done))
    assert sha == expected and path.read_bytes() == source.read_bytes()
    assert (cache / "downloads" / "elk-sdk-1.0.0.sh.sha256").read_text().strip() == expected
    assert progress and progress[-1] == source.stat().st_size
    path.write_bytes(b"tampered")
    with pytest.raises(BuildError, match=f"expected {expected}"):
        sdk_installer(toolchain, cache)


def test_unreachable_installer_url_says_how_to_proceed(tmp_path):
    toolchain = sdk_with_url((tmp_path / "nowhere.sh").as_uri())
    with pytest.raises(BuildError) as caught:
        sdk_installer(toolchain, tmp_path / "cache")
    assert "pass --sdk-installer PATH" in caught.value.one_line()
    assert not list((tmp_path / "cache" / "downloads").iterdir())  # no half-written file left


# ---- real engine ----------------------------------------------------------------------


def _file_from_image(client, image: str, path: str, dest: Path) -> Path:
    """Copy a file (following symlinks) out of an image."""
    real = client.containers.run(image, ["readlink", "-f", path], remove=True).decode().strip()
    container = client.containers.create(image, ["true"])
    try:
        stream, _ = container.get_archive(real)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.getmembers()[0]
            dest.write_bytes(archive.extractfile(member).read())
    finally:
        container.remove(force=True)
    return dest


@pytest.mark.slow
def test_debian_arm64_image_is_labelled_and_reused(docker_engine, debian_arm64_image, elkbuild_cache):
    image = docker_engine.sdk.images.get(debian_arm64_image.tag)
    assert image.labels[INPUTS_LABEL] == debian_arm64_image.inputs
    assert image.labels[TOOLCHAIN_LABEL] == "debian-arm64"
    assert image_exists(docker_engine, "debian:bookworm-slim")
    started = time.monotonic()
    again = ensure_image(docker_engine, get_toolchain("debian-arm64"), LocalExecutor(), elkbuild_cache)
    assert again.reused and again.image_id == debian_arm64_image.image_id
    assert time.monotonic() - started < 30


@pytest.mark.slow
def test_debian_arm64_image_has_the_tools_the_builds_need(tmp_path, debian_arm64_image):
    from elkbuild.config import load_config

    cfg = load_config(tmp_path)
    executor = get_toolchain("debian-arm64", cfg).executor(cfg)
    for tool in ("cmake", "ninja", "ccache", "pkg-config", "python3", "aarch64-linux-gnu-g++-10",
                 "aarch64-linux-gnu-gcc-10", "g++-12", "qemu-aarch64-static", "patchelf"):
        assert executor.run(["sh", "-c", f"command -v {tool}"], check=False).ok, tool
    # pkg-config answers for the target, from the sysroot
    flags = executor.run(["pkg-config", "--cflags", "--libs", "alsa"]).stdout.split()
    assert "-lasound" in flags


@pytest.mark.slow
def test_declared_abi_matches_the_sysroot_in_the_image(docker_engine, debian_arm64_image, tmp_path):
    toolchain = get_toolchain("debian-arm64")
    libc = _file_from_image(docker_engine.sdk, debian_arm64_image.tag,
                            f"{toolchain.sysroot}/lib/aarch64-linux-gnu/libc.so.6", tmp_path / "libc.so.6")
    libstdcxx = _file_from_image(docker_engine.sdk, debian_arm64_image.tag,
                                 f"{toolchain.sysroot}/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
                                 tmp_path / "libstdc++.so.6")
    # The declared glibc is the release; aarch64's libc 2.31 defines symbol versions up
    # to GLIBC_2.30 only (2.31 added none there), which binaries then need at most.
    measured = read_abi(libc, libstdcxx)
    assert measured.glibcxx == toolchain.abi.glibcxx
    assert _glibc_release(libc) == toolchain.abi.glibc == "2.31"
    assert version_key(measured.glibc) <= version_key(toolchain.abi.glibc)
    # gcc links the cross libc (/usr/aarch64-linux-gnu) ahead of the sysroot's: it must be
    # the same glibc, Elk 0.11's. bookworm's libc6-dev-arm64-cross (2.36) fails here.
    cross = _file_from_image(docker_engine.sdk, debian_arm64_image.tag,
                             "/usr/aarch64-linux-gnu/lib/libc.so.6", tmp_path / "cross-libc.so.6")
    assert _glibc_release(cross) == toolchain.abi.glibc
    assert read_abi(cross, libstdcxx).glibc == measured.glibc


def _glibc_release(libc: Path) -> str:
    """The release a libc.so.6 says it is ("... release version 2.31.")."""
    found = re.search(rb"release version (\d+\.\d+)", libc.read_bytes())
    assert found, libc
    return found.group(1).decode()


@pytest.mark.slow
def test_elk_sdk_image_installs_the_sdk_with_its_installer(docker_engine, elk_sdk_image,
                                                          elk_sdk_toolchain, elkbuild_cache):
    image = docker_engine.sdk.images.get(elk_sdk_image.tag)
    assert image.labels[TOOLCHAIN_LABEL] == "elk-sdk-1.0.0"
    listing = docker_engine.sdk.containers.run(
        elk_sdk_image.tag, ["sh", "-c", "ls /opt/elk/1.0.0 /opt/elk/1.0.0/sysroots"], remove=True).decode()
    for expected in ("environment-setup-cortexa72-elk-linux", "cortexa72-elk-linux", "x86_64-pokysdk-linux"):
        assert expected in listing
    # The installer was served, not copied: no layer holds it.
    history = " ".join(str(layer.get("CreatedBy", "")) for layer in image.history())
    assert "COPY" not in history
    again = ensure_image(docker_engine, elk_sdk_toolchain, LocalExecutor(), elkbuild_cache)
    assert again.reused and again.image_id == elk_sdk_image.image_id


@pytest.mark.slow
def test_dry_run_says_it_would_build_and_changes_no_image(docker_engine, debian_arm64_image,
                                                          elkbuild_cache):
    from elkbuild.docker.api import DockerApi

    dry = LocalExecutor(dry_run=True)
    result = ensure_image(DockerApi(docker_engine.sdk, dry), get_toolchain("debian-arm64"), dry,
                          elkbuild_cache, force=True)
    assert not result.reused and result.image_id == ""
    assert [entry[0] for entry in dry.history] == ["<docker build>"]
    assert docker_engine.require_image(debian_arm64_image.tag).id == debian_arm64_image.image_id


@pytest.mark.parametrize("args, needle", [
    (("docker-image", "--toolchain", "debian-arm64", "--sdk-sha256", "a" * 64),
     "--sdk-installer/--sdk-sha256 apply to elk-sdk toolchains, not debian-arm64"),
    (("docker-image", "--toolchain", "elk-sdk-1.0.0", "--sdk-sha256", "xyz"),
     "--sdk-sha256 'xyz': not a sha256"),
    (("docker-engine", "--start", "--stop"), "--start and --stop exclude each other"),
])
def test_docker_task_flags_that_do_not_fit_are_usage_errors(args, needle):
    from cli_helpers import assert_one_line_error, run_task

    assert_one_line_error(run_task(*args), needle, code=2)
