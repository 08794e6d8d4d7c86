"""Toolchain registry, CMake toolchain files, environment and executors."""

from __future__ import annotations

import os
import re
import shutil
import stat
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import require_real_part
from elftools.elf.elffile import ELFFile

from elkbuild.errors import ToolMissing, UsageError
from elkbuild.build.toolchains import (
    TOOLCHAINS,
    Abi,
    SdkRelease,
    ToolchainLocalExecutor,
    get_toolchain,
    read_abi,
)


@pytest.fixture
def cfg(tmp_path: Path) -> SimpleNamespace:
    root = tmp_path / "project"
    root.mkdir()
    return SimpleNamespace(root=root, cache_dir=tmp_path / "cache")


def test_registry_knows_every_toolchain_of_the_issue():
    assert set(TOOLCHAINS) == {"elk-sdk-0.11.0", "elk-sdk-1.0.0", "elk-sdk-1.1.0",
                               "debian-arm64", "native"}
    kinds = {name: t.kind for name, t in TOOLCHAINS.items()}
    assert kinds["debian-arm64"] == "debian-arm64" and kinds["native"] == "native"
    assert {t.arch for n, t in TOOLCHAINS.items() if n != "native"} == {"aarch64"}
    assert TOOLCHAINS["native"].arch == "x86_64"


def test_unknown_toolchain_names_the_known_ones():
    with pytest.raises(UsageError) as caught:
        get_toolchain("elk-sdk-9")
    text = caught.value.one_line()
    assert "'elk-sdk-9'" in text
    for name in TOOLCHAINS:
        assert name in text
    assert caught.value.exit_code == 2


def test_elk_sdk_releases_carry_url_install_dir_and_no_invented_sha256():
    for version in ("0.11.0", "1.0.0", "1.1.0"):
        sdk = get_toolchain(f"elk-sdk-{version}").sdk
        assert sdk is not None
        assert sdk.installer_url == (
            "https://github.com/elk-audio/elkpi-sdk/releases/download/"
            f"{version}/elk-glibc-x86_64-elkpi-audio-os-image-cortexa72-raspberrypi4-64-toolchain-{version}.sh")
        assert sdk.install_dir == f"/opt/elk/{version}"
        assert sdk.environment_path == f"/opt/elk/{version}/environment-setup-cortexa72-elk-linux"
        # Not known here: must be supplied or recorded on first download, never made up.
        assert sdk.installer_sha256 is None


def test_elk_sdk_cmake_toolchain_file_fixes_the_processor_after_oe(cfg):
    toolchain = get_toolchain("elk-sdk-1.0.0", cfg)
    text = toolchain.cmake_toolchain_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    include = 'include("/opt/elk/1.0.0/sysroots/x86_64-pokysdk-linux/usr/share/cmake/OEToolchainConfig.cmake")'
    assert lines[0] == include
    # OE sets the processor from the sysroot name; ours must come after it to win.
    assert lines.index("set(CMAKE_SYSTEM_PROCESSOR aarch64)") > lines.index(include)
    assert 'set(CMAKE_SYSROOT "/opt/elk/1.0.0/sysroots/cortexa72-elk-linux")' in lines
    assert 'set(CMAKE_CXX_FLAGS "${CMAKE_CXX_FLAGS} -mcpu=cortex-a72 -mtune=cortex-a72" CACHE STRING "" FORCE)' in lines
    assert "list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES ELKBUILD_PREFIX_PATH)" in lines


def test_elk_sdk_cmake_command(cfg):
    toolchain = get_toolchain("elk-sdk-1.0.0", cfg)
    args = toolchain.cmake_args([Path("/stage/a"), Path("/stage/b")])
    file_arg = args[0]
    assert re.fullmatch(rf"-DCMAKE_TOOLCHAIN_FILE={re.escape(str(cfg.cache_dir))}/toolchains/"
                        r"elk-sdk-1\.0\.0-[0-9a-f]{12}\.cmake", file_arg)
    assert args[1:] == ["-DCMAKE_C_COMPILER_LAUNCHER=ccache", "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache",
                        "-DCMAKE_PREFIX_PATH=/stage/a;/stage/b",
                        "-DELKBUILD_PREFIX_PATH=/stage/a;/stage/b"]
    written = Path(file_arg.split("=", 1)[1])
    assert written.read_text() == toolchain.cmake_toolchain_text()
    assert toolchain.cmake_args([], ccache=False) == [file_arg]


def test_elk_sdk_commands_source_the_environment_script_without_ld_library_path():
    prefix = get_toolchain("elk-sdk-1.1.0").command_prefix()
    assert prefix[:3] == ["env", "-u", "LD_LIBRARY_PATH"]
    assert prefix[-1] == "/opt/elk/1.1.0/environment-setup-cortexa72-elk-linux"
    assert get_toolchain("debian-arm64").command_prefix() == []


def test_environment_script_is_really_sourced_with_ld_library_path_unset(tmp_path):
    """The prefix, run for real on this host, against an SDK-shaped environment script."""
    script = tmp_path / "environment-setup-cortexa72-elk-linux"
    # Like the real script: refuses to work while LD_LIBRARY_PATH is set.
    script.write_text('if [ -n "$LD_LIBRARY_PATH" ]; then echo misconfigured; return 1; fi\n'
                      'export OECORE_TARGET_ARCH=aarch64\nexport SDKTARGETSYSROOT=/x/sysroots/cortexa72-elk-linux\n')
    base = get_toolchain("elk-sdk-1.0.0")
    assert base.sdk is not None
    sdk = replace(base.sdk, install_dir=str(tmp_path))
    toolchain = replace(base, sdk=sdk)
    executor = ToolchainLocalExecutor(prefix=toolchain.command_prefix(), base_env=toolchain.env())
    done = executor.run(["sh", "-c", 'echo "$OECORE_TARGET_ARCH $SDKTARGETSYSROOT ${LD_LIBRARY_PATH-unset} $ELK_SDK_DIR"'],
                        env={"LD_LIBRARY_PATH": "/broken"})
    assert done.stdout.split() == ["aarch64", "/x/sysroots/cortexa72-elk-linux", "unset", str(tmp_path)]
    assert executor.history[-1][0] == "sh"  # the history shows the command, not the wrapper


def test_debian_arm64_toolchain_file_and_pkg_config_point_into_the_sysroot(cfg):
    toolchain = get_toolchain("debian-arm64", cfg)
    text = toolchain.cmake_toolchain_text()
    assert 'set(CMAKE_SYSROOT "/opt/sysroots/debian-arm64")' in text
    assert "set(CMAKE_CXX_COMPILER /usr/bin/aarch64-linux-gnu-g++-10)" in text
    assert "set(CMAKE_SYSTEM_PROCESSOR aarch64)" in text
    assert "CMAKE_CROSSCOMPILING_EMULATOR /usr/bin/qemu-aarch64-static;-L;/opt/sysroots/debian-arm64" in text
    env = toolchain.env()
    assert env["PKG_CONFIG_SYSROOT_DIR"] == "/opt/sysroots/debian-arm64"
    assert env["PKG_CONFIG_LIBDIR"].split(":")[0] == "/opt/sysroots/debian-arm64/usr/lib/aarch64-linux-gnu/pkgconfig"
    native = get_toolchain("native", cfg)
    assert "-DELKBUILD_PREFIX_PATH=/p" not in native.cmake_args([Path("/p")])
    assert "-DCMAKE_PREFIX_PATH=/p" in native.cmake_args([Path("/p")])


def test_abi_is_known_for_every_toolchain():
    assert get_toolchain("elk-sdk-0.11.0").abi == Abi("2.31", "3.4.28")
    assert get_toolchain("elk-sdk-1.0.0").abi == Abi("2.35", "3.4.29")
    assert get_toolchain("debian-arm64").abi == Abi("2.31", "3.4.28")  # bullseye: Elk 0.11


def test_read_abi_from_real_libraries():
    """The native toolchain's declared ABI matches this bookworm host's own libraries."""
    libc = Path("/lib/x86_64-linux-gnu/libc.so.6")
    libstdcxx = Path("/lib/x86_64-linux-gnu/libstdc++.so.6")
    require_real_part(libc.exists() and libstdcxx.exists(), "the host's libc and libstdc++",
                      "run on Debian 12 with libstdc++6 installed")
    assert read_abi(libc, libstdcxx) == get_toolchain("native").abi


def test_identity_is_stable_and_follows_the_definition():
    first = get_toolchain("debian-arm64")
    assert first.identity() == get_toolchain("debian-arm64").identity()
    assert len({t.identity() for t in TOOLCHAINS.values()}) == len(TOOLCHAINS)
    changed = replace(first, definition={**first.definition, "cpu_flags": ["-mcpu=cortex-a53"]})
    assert changed.identity() != first.identity()
    sdk = get_toolchain("elk-sdk-1.0.0")
    pinned = sdk.with_installer(sha256="ab" * 32)
    assert pinned.identity() != sdk.identity()


def test_with_installer_checks_its_input(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        get_toolchain("elk-sdk-1.0.0").with_installer(tmp_path / "missing.sh")
    with pytest.raises(UsageError, match="only applies to elk-sdk"):
        get_toolchain("debian-arm64").with_installer(tmp_path)
    installer = tmp_path / "sdk.sh"
    installer.write_text("#!/bin/sh\n")
    sdk = get_toolchain("elk-sdk-1.0.0").with_installer(installer).sdk
    assert isinstance(sdk, SdkRelease) and sdk.installer == installer.resolve()


def test_local_executor_refuses_a_toolchain_not_installed_here(cfg):
    with pytest.raises(ToolMissing) as caught:
        get_toolchain("elk-sdk-1.1.0").executor(cfg, local=True)
    assert "not installed at /opt/elk/1.1.0" in caught.value.one_line()
    assert "drop --local" in caught.value.one_line()
    # dry-run never checks the host
    dry = get_toolchain("elk-sdk-1.1.0").executor(cfg, local=True, dry_run=True)
    assert dry.run(["cmake", "--version"]).ok and dry.history == [["cmake", "--version"]]


def test_container_executor_mounts_project_cache_and_elkbuild(cfg):
    from elkbuild.docker.container import ContainerExecutor
    from elkbuild.executor import EXECUTORS

    executor = get_toolchain("debian-arm64", cfg).executor(cfg, dry_run=True)
    assert isinstance(executor, ContainerExecutor) and EXECUTORS["container"] is ContainerExecutor
    assert executor.image == "elkbuild/debian-arm64:bookworm-glibc2.31"
    assert executor.user == f"{os.getuid()}:{os.getgid()}"
    mounts = set(executor.mounts)
    assert {cfg.root.resolve(), cfg.cache_dir.resolve()} <= mounts
    assert executor.workdir == str(cfg.root)
    assert executor.run(["cmake", "--version"]).ok  # dry run: no engine touched
    assert executor.client is None


def test_native_toolchain_builds_locally_for_x86_64(cfg, tmp_path):
    toolchain = get_toolchain("native", cfg)
    require_real_part(shutil.which("g++-12") is not None, "the host's g++-12", "apt-get install g++-12")
    source = cfg.root / "hello.cpp"
    source.write_text("#include <cstdio>\nint main() { std::puts(\"hi\"); }\n")
    executor = toolchain.executor(cfg, local=True)
    executor.run(["g++-12", "-O2", str(source), "-o", str(cfg.root / "hello")])
    binary = cfg.root / "hello"
    assert binary.stat().st_mode & stat.S_IXUSR
    with open(binary, "rb") as handle:
        assert ELFFile(handle)["e_machine"] == "EM_X86_64"


def test_project_file_can_name_a_local_sdk_installer_and_its_sha256(tmp_path):
    from elkbuild.config import load_config
    from elkbuild.errors import ConfigError

    root = tmp_path / "proj"
    root.mkdir()
    (root / "sdk.sh").write_text("#!/bin/sh\n")
    project_file = root / "elkbuild.yaml"
    project_file.write_text("toolchains:\n  elk-sdk-1.0.0:\n    sdk_installer: sdk.sh\n"
                            f"    sdk_sha256: {'c' * 64}\n")
    sdk = get_toolchain("elk-sdk-1.0.0", load_config(root)).sdk
    assert sdk is not None and sdk.installer == (root / "sdk.sh").resolve()
    assert sdk.installer_sha256 == "c" * 64
    project_file.write_text("toolchains:\n  elk-sdk-1.0.0:\n    sdk_sha256: nope\n")
    with pytest.raises(ConfigError) as caught:
        get_toolchain("elk-sdk-1.0.0", load_config(root))
    assert caught.value.one_line().startswith(f"{project_file}: toolchains.elk-sdk-1.0.0.sdk_sha256 is 'nope';")


def test_debian_arm64_builds_are_gated_against_both_elk_lines_by_default():
    # Its glibc 2.31 sysroot and cross libc are Elk 0.11's, so one build fits 0.11 and 1.x.
    toolchain = get_toolchain("debian-arm64")
    assert toolchain.default_board_profiles == ("elk-0.11", "elk-1.x")
    assert toolchain.abi.glibc == "2.31" and toolchain.definition["sysroot"]["suite"] == "bullseye"
    assert get_toolchain("elk-sdk-0.11.0").default_board_profiles == ("elk-0.11",)
    assert get_toolchain("elk-sdk-1.1.0").default_board_profiles == ("elk-1.x",)
    assert get_toolchain("native").image == toolchain.image  # native runs in its image
