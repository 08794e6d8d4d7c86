"""Makes a stand-in Elk-PI SDK installer with the shape of the real (Yocto) one.

The real installer cannot be downloaded here, so the code paths that install and
use it are exercised with this one: a self-extracting .sh taking `-y -d DIR`, an
`environment-setup-cortexa72-elk-linux` script, `sysroots/cortexa72-elk-linux`
and `sysroots/x86_64-pokysdk-linux`, and an OEToolchainConfig.cmake that derives
CMAKE_SYSTEM_PROCESSOR from the sysroot's name as OpenEmbedded's old one does.
Its compiler is Debian's aarch64 cross GCC, copied out of the debian-arm64 image.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from elkbuild.executor import Executor

HERE = Path(__file__).resolve().parent
INPUTS = ("build.sh", "installer-header.sh", "environment-setup-cortexa72-elk-linux",
          "OEToolchainConfig.cmake")


def standin_digest(version: str, image_id: str) -> str:
    digest = hashlib.sha256(f"{version}\n{image_id}\n".encode())
    for name in INPUTS:
        digest.update((HERE / name).read_bytes())
    return digest.hexdigest()[:16]


def make_standin_installer(executor: Executor, out_dir: Path, *, version: str, sysroot: str,
                           image_id: str = "") -> Path:
    """Build (or reuse) the stand-in installer; `executor` runs in the debian-arm64 image."""
    output = Path(out_dir) / f"elk-sdk-standin-{version}-{standin_digest(version, image_id)}.sh"
    if output.is_file():
        return output
    executor.run(["sh", str(HERE / "build.sh"), version, str(output), str(HERE), sysroot])
    return output
