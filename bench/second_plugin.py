"""The build of a second new plugin after the first, natively and for the board, as a
ratio against the first build.

Renders new plugins of one kind (onnx effects on the example saturator model, each
with its own name, codes and description) into a scratch folder in elkbuild's cache
and builds each from an empty build folder, one after the other: natively
(build-native, host compiler) and cross (invoke build's build_plugin in the
toolchain's container). The first build of each fills a ccache of its own, made
empty in the scratch folder, so the first build is a cold one; the next take
JUCE's module objects from it. Prints each build's wall time, the ratio to the
first, and ccache's hits. The scratch folder is removed at the end.

    .venv/bin/python bench/second_plugin.py [--plugins 2] [--native-only | --cross-only]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from elkbuild.build.toolchains import OnDemandExecutor, get_toolchain  # noqa: E402
from elkbuild.config import load_config  # noqa: E402
from elkbuild.deps.runner import DepsRunner  # noqa: E402
from elkbuild.executor import Executor, LocalExecutor  # noqa: E402
from elkbuild.plugin.cross_build import build_plugin  # noqa: E402
from elkbuild.plugin.native_build import build_native  # noqa: E402
from elkbuild.plugin.render import NewPlugin, new_plugin  # noqa: E402
from elkbuild.reporting import Reporter  # noqa: E402

MODEL = REPO / "plugins" / "NeuralSaturator" / "model" / "saturator.onnx"


class _BuildDirIn:
    """The project's settings with the build folder moved into the scratch folder."""

    def __init__(self, cfg: Any, build_dir: Path) -> None:
        self._cfg, self.build_dir = cfg, build_dir

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cfg, name)


def _render(scratch: Path, count: int) -> list[Path]:
    projects = scratch / "plugins"
    projects.mkdir(parents=True)
    names = [f"Bench{chr(ord('A') + i)}{os.getpid() % 1000:03d}" for i in range(count)]
    for i, name in enumerate(names):
        new_plugin(NewPlugin(name, "onnx", "effect", MODEL, plugin_code=f"Bn{i:02d}",
                             description=f"bench plugin {i + 1}"), projects, say=lambda _: None)
    return [projects / name for name in names]


def _hits(executor: Executor) -> str:
    stats = executor.run(["ccache", "--print-stats"]).stdout
    values = dict(re.findall(r"^(\w+)\t(\d+)$", stats, re.M))
    hit = int(values.get("direct_cache_hit", 0)) + int(values.get("preprocessed_cache_hit", 0))
    miss = int(values.get("cache_miss", 0))
    return f"ccache {hit} hits / {miss} misses"


def _series(label: str, projects: list[Path], build: Callable[[Path], object],
            stats: Executor) -> None:
    first = None
    for n, project in enumerate(projects, 1):
        stats.run(["ccache", "--zero-stats"])
        started = time.monotonic()
        build(project)
        seconds = time.monotonic() - started
        first = first or seconds
        print(f"  {label} build {n} ({project.name}) {seconds:7.1f} s   ratio {seconds / first:5.2f}"
              f"   {_hits(stats)}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", type=int, default=2)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--native-only", action="store_true")
    only.add_argument("--cross-only", action="store_true")
    args = parser.parse_args()

    cfg = load_config(REPO)
    cache = Path(cfg.cache_dir)
    scratch = cache / "bench" / f"second-plugin-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    host = LocalExecutor()
    try:
        projects = _render(scratch, args.plugins)
        print(f"{args.plugins} new onnx effect plugins, each from an empty build folder, "
              f"the first with an empty ccache:")
        if not args.cross_only:
            os.environ["CCACHE_DIR"] = str(scratch / "ccache-native")
            _series("native", projects,
                    lambda p: build_native(p, host, cache, scratch / "build"), host)
        if not args.native_only:
            toolchain = get_toolchain(cfg.toolchain, cfg)
            bench_cfg = _BuildDirIn(cfg, scratch / "build")
            quiet = Reporter(quiet=True)
            make = OnDemandExecutor(toolchain, cfg, host, display=quiet)
            executor = make()
            # A ccache of its own in the mounted cache folder, not the shared volume.
            executor.base_env["CCACHE_DIR"] = str(scratch / "ccache-cross")
            runner = DepsRunner.for_project(cfg, toolchain, make_executor=make,
                                            fetch_executor=host, reporter=quiet)
            _series(f"cross ({toolchain.name})", projects,
                    lambda p: build_plugin(p, cfg=bench_cfg, toolchain=toolchain,
                                           make_executor=make, stage_engine=runner.stage),
                    executor)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
