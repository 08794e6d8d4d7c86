"""JUCE for plugin builds: Debian's JUCE 7.0.5 with elkbuild's real-time fixes.

Debian's package installs JUCE's CMake package (which names its modules folder
by absolute path) and the modules. elkbuild copies both into its cache once,
applies the patches in elkbuild/juce_patches/<version>/ and points the copy's
CMake package at the patched modules; builds pass -DJUCE_DIR=<copy>/cmake.

The patches make the VST3 wrapper's process() free of allocations and of waits:
JUCE 7.0.5 copies a channel mapping (a std::vector) for every input bus of every
block, and waits on the processor's callback lock. Both are audio-thread calls
that break real-time safety under Xenomai/EVL (a mode switch each time the
allocator or the futex enters the kernel); `invoke rt-check` counts them.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

from elkbuild.deps.patching import apply_patches
from elkbuild.errors import BuildError
from elkbuild.executor import Executor

log = logging.getLogger("elkbuild.juce")

JUCE_VERSION = "7.0.5"
# Where Debian's juce-modules-source puts JUCE, on the host and in the build images.
SYSTEM_CMAKE_DIR = Path(f"/usr/lib/x86_64-linux-gnu/cmake/JUCE-{JUCE_VERSION}")
SYSTEM_MODULES_DIR = Path("/usr/share/juce/modules")
PATCHES = Path(__file__).resolve().parent / "juce_patches" / JUCE_VERSION


def patch_files() -> list[Path]:
    return sorted(PATCHES.glob("*.patch"))


def patched_juce_key() -> str:
    digest = hashlib.sha256(JUCE_VERSION.encode())
    for patch in patch_files():
        digest.update(patch.name.encode() + b"\0" + patch.read_bytes())
    return digest.hexdigest()[:16]


def patched_juce(executor: Executor, cache_dir: Path) -> Path:
    """JUCE_DIR of the patched copy (made once per patch set, atomically).

    The copy is made through `executor` (the toolchain's container or the host),
    so JUCE need only be installed where the build runs.
    """
    root = Path(cache_dir) / "juce" / f"{JUCE_VERSION}-{patched_juce_key()}"
    if (root / ".complete").is_file():
        return root / "cmake"
    partial = root.with_name(root.name + ".partial")
    copies = [["cp", "-R", str(SYSTEM_MODULES_DIR), str(partial / "modules")],
              ["cp", "-R", str(SYSTEM_CMAKE_DIR), str(partial / "cmake")]]
    if executor.dry_run:
        for argv in copies:
            executor.run(argv)
        log.info("would patch %s with %s and write %s", partial / "modules",
                 ", ".join(p.name for p in patch_files()), root)
        return root / "cmake"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for argv in copies:
        executor.run(argv, hint="JUCE comes from Debian: apt-get install juce-modules-source juce-tools")
    apply_patches(partial / "modules", patch_files())
    config = partial / "cmake" / "JUCEConfig.cmake"
    text = config.read_text()
    for system, copy in ((str(SYSTEM_MODULES_DIR), root / "modules"),
                         (str(SYSTEM_CMAKE_DIR), root / "cmake")):
        if system not in text:
            raise BuildError(f"{config}: names no {system}",
                             f"elkbuild's JUCE handling is for Debian's JUCE {JUCE_VERSION}")
        text = text.replace(system, str(copy))
    config.write_text(text)
    (partial / ".complete").touch()
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    return root / "cmake"
