"""build-deps: a cold build against a no-op rebuild, side by side, as ratios.

Runs the debian-arm64 recipes (Debian's TFLite and ONNX Runtime .debs) in a
throw-away project:
  cold      empty source cache and build dir: apt index, downloads, unpack, stage
  warm      sources cached, build dir removed: unpack and stage only
  no-op     nothing changed (median of --repeat runs), in process
  no-op CLI the same through `invoke build-deps`, as a user types it
The unpack step runs on this host (dpkg -x) unless --container is given.

    .venv/bin/python bench/build_deps_noop.py [--repeat 5] [--container] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from elkbuild.config import load_config  # noqa: E402
from elkbuild.deps import DepsRunner  # noqa: E402
from elkbuild.executor import LocalExecutor  # noqa: E402
from elkbuild.build.toolchains import get_toolchain  # noqa: E402


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--container", action="store_true", help="unpack inside the toolchain container")
    parser.add_argument("--keep", type=Path, help="use (and keep) this folder instead of a temporary one")
    args = parser.parse_args()

    base = args.keep or Path(tempfile.mkdtemp(prefix="elkbuild-bench-deps-"))
    project, cache = base / "proj", base / "cache"
    shutil.rmtree(base, ignore_errors=True)
    project.mkdir(parents=True)
    os.environ["ELKBUILD_CACHE"] = str(cache)
    cfg = load_config(project)
    toolchain = get_toolchain("debian-arm64", cfg)
    host = LocalExecutor()
    factory = (lambda: toolchain.executor(cfg)) if args.container else (lambda: host)

    def build():
        return DepsRunner(cfg, toolchain, make_executor=factory, fetch_executor=host).build()

    cold, results = timed(build)
    assert {r.status for r in results} == {"built"}, results
    shutil.rmtree(cfg.build_dir)
    warm, results = timed(build)
    assert {r.status for r in results} == {"built"}, results
    noops = []
    for _ in range(args.repeat):
        seconds, results = timed(build)
        assert {r.status for r in results} == {"up to date"}, results
        noops.append(seconds)
    noop = statistics.median(noops)

    env = {**os.environ, "ELKBUILD_PROJECT_DIR": str(project), "ELKBUILD_CACHE": str(cache)}
    cli_runs = []
    for _ in range(args.repeat):
        seconds, done = timed(lambda: host.run(
            [sys.executable, "-m", "invoke", "--search-root", str(REPO), "build-deps",
             "--toolchain", "debian-arm64"], env=env, check=False))
        assert done.returncode == 0 and "up to date" in done.stdout, done.stderr
        cli_runs.append(seconds)
    cli = statistics.median(cli_runs)

    names = ", ".join(f"{r.name} {r.version}" for r in results)
    print(f"build-deps --toolchain debian-arm64 ({names}); unpack: {'container' if args.container else 'host'}")
    print(f"cold (empty cache)     {cold:8.3f} s")
    print(f"warm (sources cached)  {warm:8.3f} s")
    print(f"no-op, in process      {noop:8.3f} s  (median of {args.repeat})")
    print(f"no-op, invoke CLI      {cli:8.3f} s  (median of {args.repeat})")
    print(f"ratio cold / no-op     {cold / noop:8.0f} x")
    print(f"ratio warm / no-op     {warm / noop:8.0f} x")
    print(f"ratio cold / no-op CLI {cold / cli:8.1f} x")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
