"""ContainerExecutor against the real engine and the real toolchain images."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from elkbuild.config import load_config
from elkbuild.docker.container import ContainerError, ContainerExecutor
from elkbuild.errors import CommandFailed
from elkbuild.build.toolchains import get_toolchain

pytestmark = pytest.mark.slow

HELLO = """#include <iostream>
#include <string>
#include <vector>
int main(int argc, char** argv) {
    std::vector<std::string> words{"hello", "from", "aarch64"};
    for (const auto& w : words) std::cout << w << ' ';
    std::cout << argc << std::endl;
    return 0;
}
"""

PROBE_PROJECT = """cmake_minimum_required(VERSION 3.16)
project(probe CXX)
file(WRITE "${CMAKE_BINARY_DIR}/processor.txt" "${CMAKE_SYSTEM_PROCESSOR}")
add_executable(probe main.cpp)
"""


def machine(path: Path) -> str:
    with open(path, "rb") as handle:
        return ELFFile(handle)["e_machine"]


@pytest.fixture
def project(tmp_path: Path):
    root = tmp_path / "proj"
    root.mkdir()
    return load_config(root)


@pytest.fixture
def arm64(project, debian_arm64_image):
    toolchain = get_toolchain("debian-arm64", project)
    return toolchain, toolchain.executor(project)


def test_cross_compiles_for_aarch64_as_the_invoking_user(project, arm64):
    toolchain, executor = arm64
    (project.root / "hello.cpp").write_text(HELLO)
    (project.root / "out").mkdir()
    executor.run([toolchain.compiler(), f"--sysroot={toolchain.sysroot}",
                  *toolchain.cpu_flags, "-O2", "hello.cpp", "-o", "out/hello"], cwd=str(project.root))
    binary = project.root / "out" / "hello"
    assert machine(binary) == "EM_AARCH64"
    info = binary.stat()
    assert (info.st_uid, info.st_gid) == (os.getuid(), os.getgid())
    # The binary really runs (under qemu in the image) against the sysroot's libraries.
    done = executor.run(["qemu-aarch64-static", "-L", toolchain.sysroot, "out/hello", "x"])
    assert done.stdout.strip() == "hello from aarch64 2"


def test_files_are_owned_by_the_uid_the_container_runs_as(project, arm64):
    """With a uid:gid other than root's, nothing the container writes is root-owned."""
    toolchain, executor = arm64
    other = ContainerExecutor(image=executor.image, mounts=executor.mounts, user="4321:4322",
                              workdir=str(project.root), cache_dir=executor.cache_dir,
                              base_env=executor.base_env, client=executor.client)
    work = project.root / "shared"
    work.mkdir()
    work.chmod(0o777)
    (work / "hello.cpp").write_text(HELLO)
    other.run(["sh", "-c", f"id -u; id -g; {toolchain.compiler()} --sysroot={toolchain.sysroot} "
               "-c hello.cpp -o hello.o"], cwd=str(work))
    produced = work / "hello.o"
    assert (produced.stat().st_uid, produced.stat().st_gid) == (4321, 4322)
    assert machine(produced) == "EM_AARCH64"


def test_output_streams_line_by_line_and_keeps_stdout_and_stderr_apart(arm64):
    _, executor = arm64
    seen: list[tuple[float, str]] = []
    # stdout and stderr are two pipes: lines written at once on both may arrive in
    # either order, so the stderr line is written a moment later.
    done = executor.run(["sh", "-c", "echo one; sleep 0.3; echo warn >&2; sleep 1; echo two"],
                        on_line=lambda line: seen.append((time.monotonic(), line)))
    assert [line for _, line in seen] == ["one", "warn", "two"]
    assert seen[-1][0] - seen[0][0] >= 0.8  # "one" arrived before the command ended
    assert done.stdout == "one\ntwo\n" and done.stderr == "warn\n"


def test_exit_codes_stdin_and_timeouts(arm64):
    _, executor = arm64
    with pytest.raises(CommandFailed) as caught:
        executor.run(["sh", "-c", "echo broken >&2; exit 3"])
    assert caught.value.returncode == 3 and "broken" in caught.value.one_line()
    assert executor.run(["sh", "-c", "exit 5"], check=False).returncode == 5
    assert executor.run(["tr", "a-z", "A-Z"], input="through stdin\n").stdout == "THROUGH STDIN\n"
    started = time.monotonic()
    assert executor.run(["sleep", "30"], timeout=2, check=False).returncode != 0
    assert time.monotonic() - started < 20


def test_ccache_volume_persists_between_containers(project, arm64):
    toolchain, executor = arm64
    (project.root / "hello.cpp").write_text(HELLO)
    compile_once = ["ccache", toolchain.compiler(), f"--sysroot={toolchain.sysroot}",
                    "-c", "hello.cpp", "-o", "hello.o"]
    executor.run(["ccache", "--zero-stats"])
    executor.run(compile_once)
    executor.run(["rm", "hello.o"])
    executor.run(compile_once)  # a new container: only the volume remembers the first
    stats = executor.run(["ccache", "--print-stats"]).stdout
    counters = dict(line.split("\t", 1) for line in stats.splitlines() if "\t" in line)
    hits = int(counters.get("direct_cache_hit", 0)) + int(counters.get("preprocessed_cache_hit", 0))
    assert hits >= 1


def test_missing_image_is_one_line_with_the_fix(project, docker_engine):
    executor = ContainerExecutor(image="elkbuild/none:missing", mounts=[project.root],
                                 base_env={"ELKBUILD_TOOLCHAIN": "debian-arm64"}, client=docker_engine)
    with pytest.raises(ContainerError) as caught:
        executor.run(["true"])
    assert caught.value.one_line() == ("image elkbuild/none:missing is not built "
                                       "(hint: run `invoke docker-image --toolchain debian-arm64`)")


def test_elk_sdk_standin_builds_a_cmake_project_with_the_processor_fixed(project, elk_sdk_toolchain,
                                                                        elk_sdk_image):
    toolchain = get_toolchain(elk_sdk_toolchain.name, project)
    executor = toolchain.executor(project)
    (project.root / "CMakeLists.txt").write_text(PROBE_PROJECT)
    (project.root / "main.cpp").write_text(HELLO)
    executor.run(["cmake", "-S", ".", "-B", "build", "-G", "Ninja", *toolchain.cmake_args([])])
    executor.run(["cmake", "--build", "build"])
    assert (project.root / "build" / "processor.txt").read_text() == "aarch64"
    assert machine(project.root / "build" / "probe") == "EM_AARCH64"
    # The stand-in's own OE toolchain file alone gives what breaks Abseil:
    # proof that the fix above is really exercised.
    executor.run(["sh", "-c", 'cmake -S . -B oe-only -G Ninja -DCMAKE_TOOLCHAIN_FILE="$OE_CMAKE_TOOLCHAIN_FILE"'])
    assert (project.root / "oe-only" / "processor.txt").read_text() == "cortexa72"
    # The SDK's compiler is the one CMake used, found through the sourced environment.
    cache = (project.root / "build" / "CMakeCache.txt").read_text()
    assert "/opt/elk/1.0.0/sysroots/x86_64-pokysdk-linux/usr/bin/aarch64-elk-linux/aarch64-elk-linux-g++" in cache
