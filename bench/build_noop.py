"""invoke build when nothing changed, against a bare `cmake --build` no-op of the
same build directory in the same container, side by side, as a ratio.

Needs a plugin built once (`invoke build --plugin NeuralSaturator`; this script
builds it if it is not). Prints the medians of --repeat runs:
  elkbuild no-op   `invoke build --plugin P` (digest check only, no container)
  cmake no-op      `cmake --build <dir>` in the toolchain container (ninja: no work)
  cmake in-process the same ninja no-op on an already running container session

    .venv/bin/python bench/build_noop.py [--plugin NeuralSaturator] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from elkbuild.config import load_config  # noqa: E402
from timing import median_seconds  # noqa: E402
from elkbuild.build.toolchains import get_toolchain  # noqa: E402
from elkbuild.executor import LocalExecutor  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugin", default="NeuralSaturator")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    invoke = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "build", "--plugin",
              args.plugin]
    host = LocalExecutor()
    host.run(invoke)  # built once, then a no-op
    cfg = load_config(REPO)
    toolchain = get_toolchain(cfg.toolchain, cfg)
    build_dir = cfg.build_dir / "plugins" / toolchain.name / args.plugin
    executor = toolchain.executor(cfg)

    def elkbuild_noop() -> None:
        done = host.run(invoke)
        assert "up to date" in done.stdout, done.stdout

    def cmake_noop_new_container() -> None:
        toolchain.executor(cfg).run(["cmake", "--build", str(build_dir)])

    def cmake_noop() -> None:
        executor.run(["cmake", "--build", str(build_dir)])

    ours = median_seconds(elkbuild_noop, args.repeat)
    bare_fresh = median_seconds(cmake_noop_new_container, args.repeat)
    bare = median_seconds(cmake_noop, args.repeat)
    print(f"no-op build of {args.plugin} ({toolchain.name}), median of {args.repeat}:")
    print(f"  invoke build (whole CLI, digest check)  {ours:7.3f} s")
    print(f"  cmake --build in the container          {bare_fresh:7.3f} s   ratio {bare_fresh / ours:5.1f}x")
    print(f"  cmake --build, container already up     {bare:7.3f} s   ratio {bare / ours:5.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
