"""What the build-deps and fetch-sources tasks do, minus flag parsing and printing."""

from __future__ import annotations

import sys
from typing import Any, Callable, TextIO

from elkbuild.build.toolchains import get_toolchain
from elkbuild.deps.recipes import VARIANTS
from elkbuild.deps.runner import DepResult, DepsRunner
from elkbuild.deps.source_cache import FetchReport
from elkbuild.errors import UsageError
from elkbuild.executor import Executor
from elkbuild.reporting import Reporter


def make_runner(cfg: Any, toolchain_name: str | None, *, local: bool = False, offline: bool = False,
                jobs: int = 0, from_source: bool = False, variant: str = "",
                allow_unpinned: bool = False, update: bool = False,
                reporter: Reporter | None = None,
                make_executor: Callable[[], Executor] | None = None,
                fetch_executor: Executor, dry_run: bool = False) -> DepsRunner:
    """A runner for the project's toolchain (or `toolchain_name`); builds run in the
    toolchain's container, or on the host when `local`."""
    if jobs < 0:
        raise UsageError(f"jobs {jobs}: must be 1 or more (0 means one per core)")
    if variant and variant not in VARIANTS:
        raise UsageError(f"variant {variant!r}: not a recipe variant", f"choose one of: {', '.join(VARIANTS)}")
    toolchain = get_toolchain(toolchain_name or cfg.toolchain, cfg)
    return DepsRunner.for_project(
        cfg, toolchain,
        make_executor=make_executor or (lambda: toolchain.executor(cfg, local=local, dry_run=dry_run,
                                                                   host=fetch_executor)),
        fetch_executor=fetch_executor, offline=offline, jobs=jobs or None,
        variant="source" if from_source else (variant or "default"),
        allow_unpinned=allow_unpinned, update=update, reporter=reporter, dry_run=dry_run)


def build_deps(runner: DepsRunner, only: str | None = None, force: bool = False) -> list[DepResult]:
    with runner.reporter.live():
        return runner.build(only, force=force)


def fetch_sources(runner: DepsRunner, only: str | None = None) -> FetchReport:
    with runner.reporter.live():
        return runner.fetch(only)


def summary_line(result: DepResult) -> str:
    if result.status == "up to date":
        return f"{result.name} {result.version}: up to date ({result.prefix})"
    return f"{result.name} {result.version}: {result.status} ({', '.join(result.changed)}) -> {result.prefix}"


def print_summary(results: list[DepResult], out: TextIO = sys.stdout) -> None:
    for result in results:
        print(summary_line(result), file=out)
