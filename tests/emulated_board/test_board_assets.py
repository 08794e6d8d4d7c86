"""The emulated board's stand-ins (sushi, rtstat, the procshim, the VST3 host), built
for real in the default toolchain's container, into a cache of their own: they must
fit the glibc floor plugins are built for (Elk 0.11's 2.31), so they also run on a
board with a bullseye userland."""

from __future__ import annotations

import pytest

from elkbuild.build.toolchains import BOARD_TOOLCHAIN, board_program_executor, get_toolchain
from elkbuild.elf import read_elf, version_key
from elkbuild.emulated_board import images
from elkbuild.executor import LocalExecutor

pytestmark = pytest.mark.slow


def test_stand_ins_are_built_in_the_toolchain_image_within_its_glibc(tmp_path, debian_arm64_image,
                                                                     elkbuild_cache):
    toolchain = get_toolchain(BOARD_TOOLCHAIN)
    # The shared cache's engine and image; the layer is built under tmp_path.
    compiler = board_program_executor(elkbuild_cache, LocalExecutor(), work_dir=tmp_path)()
    said: list[str] = []
    target = images.board_cache(tmp_path) / f"assets-{images.assets_key()}"
    images.build_assets(compiler, target, said.append)
    assert any(toolchain.c_compiler() in line for line in said)
    built = [*(target / relative for relative in images.PROGRAMS), target / images.VST3HOST,
             target / images.VST3HOST.with_name("librt_interpose.so")]
    for path in built:
        info = read_elf(path)
        assert info is not None and info.machine == "EM_AARCH64", path
        needed = info.highest_needed("GLIBC")
        assert needed and version_key(needed) <= version_key(toolchain.abi.glibc) == (2, 31), (path, needed)
        cxx = info.highest_needed("GLIBCXX")  # the VST3 host links the board's libstdc++
        assert cxx is None or version_key(cxx) <= version_key(toolchain.abi.glibcxx), (path, cxx)
