"""What the build-deps and fetch-sources tasks do, minus flag parsing and printing."""

from __future__ import annotations

import sys
from typing import Any

from elkbuild.errors import UsageError
from elkbuild.reporting import Reporter
from elkbuild.deps.recipes import VARIANTS
from elkbuild.deps.runner import DepResult, DepsRunner
from elkbuild.deps.source_cache import FetchReport


def make_runner(cfg: Any, toolchain_name: str | None, *, local: bool = False, offline: bool = False,
                jobs: int = 0, from_source: bool = False, variant: str = "",
                allow_unpinned: bool = False, update: bool = False,
                reporter: Any = None, make_executor: Any = None) -> DepsRunner:
    from elkbuild.build.toolchains import get_toolchain  # late: only tasks need the registry

    if jobs < 0:
        raise UsageError(f"--jobs {jobs}: must be 1 or more (0 means one per core)")
    if offline and update:
        raise UsageError("--offline cannot be combined with --update",
                         "--update asks Debian's archive again; drop one of them")
    if variant and variant not in VARIANTS:
        raise UsageError(f"--variant {variant!r}: not a recipe variant", f"choose one of: {', '.join(VARIANTS)}")
    if variant and from_source and variant != "source":
        raise UsageError(f"--from-source with --variant {variant}", "give one of them")
    toolchain = get_toolchain(toolchain_name or cfg.toolchain, cfg)
    mirror = (cfg.section("dependencies") or {}).get("debian_mirror")
    return DepsRunner(cfg, toolchain,
                      make_executor=make_executor or (lambda: toolchain.executor(cfg, local=local)),
                      offline=offline, jobs=jobs or None,
                      variant="source" if from_source else (variant or "default"),
                      allow_unpinned=allow_unpinned, update=update, reporter=reporter,
                      mirror=mirror if isinstance(mirror, str) else None)


def build_deps(runner: DepsRunner, only: str | None = None, force: bool = False) -> list[DepResult]:
    reporter = runner.reporter
    if isinstance(reporter, Reporter):
        with reporter.live():
            return runner.build(only, force=force)
    return runner.build(only, force=force)


def fetch_sources(runner: DepsRunner, only: str | None = None) -> FetchReport:
    reporter = runner.reporter
    if isinstance(reporter, Reporter):
        with reporter.live():
            return runner.fetch(only)
    return runner.fetch(only)


def summary_line(result: DepResult) -> str:
    if result.status == "up to date":
        return f"{result.name} {result.version}: up to date ({result.prefix})"
    return f"{result.name} {result.version}: built ({', '.join(result.changed)}) -> {result.prefix}"


def print_summary(results: list[DepResult], out=sys.stdout) -> None:
    for result in results:
        print(summary_line(result), file=out)
