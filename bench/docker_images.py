"""Toolchain images: cold builds against the reused-image check, side by side, as ratios.

Starts a throw-away private Docker engine with an empty data root and measures:
  engine    starting the private dockerd
  seed      the base image from Debian packages (mmdebstrap -> docker import)
  arm64     the debian-arm64 image from the seeded base
  sdk       the elk-sdk-1.0.0 image from a stand-in installer (--sdk; the stand-in
            is made in the debian-arm64 image first, timed as `standin`)
  warm      `ensure_image` again with nothing changed (median of --repeat runs)
  run       one short command through ContainerExecutor (median of --repeat runs)

    .venv/bin/python bench/docker_images.py [--sdk] [--repeat 5] [--keep]
Needs root, docker.io and mmdebstrap, and Debian's archive.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from elkbuild.docker.container import ContainerExecutor  # noqa: E402
from elkbuild.docker.engine import seed_base_image, start_private_engine, stop_private_engine  # noqa: E402
from elkbuild.docker.images import ensure_image  # noqa: E402
from elkbuild.executor import LocalExecutor  # noqa: E402
from elkbuild.build.toolchains import get_toolchain  # noqa: E402


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdk", action="store_true", help="also build the elk-sdk image from a stand-in")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave the engine's data behind")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="elkbench-"))
    executor = LocalExecutor()
    times: dict[str, float] = {}
    try:
        times["engine"], client = timed(lambda: start_private_engine(executor, home))
        times["seed"], _ = timed(lambda: seed_base_image(client, executor, "debian:bookworm-slim", home))
        arm64 = get_toolchain("debian-arm64")
        times["arm64"], built = timed(lambda: ensure_image(client, arm64, executor, home))
        if args.sdk:
            from types import SimpleNamespace

            from elk_sdk_standin import make_standin_installer

            cfg = SimpleNamespace(root=home / "project", cache_dir=home)
            cfg.root.mkdir()
            maker = get_toolchain("debian-arm64", cfg).executor(cfg)
            maker.client = client
            times["standin"], installer = timed(lambda: make_standin_installer(
                maker, home / "standin", version="1.0.0", sysroot=arm64.sysroot or "",
                image_id=built.image_id))
            sdk = get_toolchain("elk-sdk-1.0.0").with_installer(installer)
            times["sdk"], _ = timed(lambda: ensure_image(client, sdk, executor, home))
        warm = [timed(lambda: ensure_image(client, arm64, executor, home))[0] for _ in range(args.repeat)]
        times["warm"] = statistics.median(warm)
        runner = ContainerExecutor(image=built.tag, mounts=[home], client=client, cache_dir=home)
        runs = [timed(lambda: runner.run(["true"]))[0] for _ in range(args.repeat)]
        times["run"] = statistics.median(runs)
        driver = client.info().get("Driver", "?")
    finally:
        stop_private_engine(executor, home)
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)

    print(f"storage driver: {driver}")
    for name, seconds in times.items():
        print(f"{name:8s} {seconds:8.2f} s")
    cold = times["seed"] + times["arm64"]
    print(f"cold (seed + arm64) / warm check: {cold / times['warm']:.0f}x")
    print(f"arm64 build / one container run: {times['arm64'] / times['run']:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
