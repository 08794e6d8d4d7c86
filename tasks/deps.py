"""Tasks: inference-engine dependencies."""

from __future__ import annotations

from elkbuild.cli import elk_task
from elkbuild.errors import UsageError
from elkbuild.reporting import Reporter

from tasks.shell import load


def check_jobs(jobs: int) -> int:
    """--jobs as a number of compile jobs: 0 means the default."""
    if int(jobs) < 0:
        raise UsageError(f"--jobs {jobs}: must be 1 or more (0 means one per core)")
    return int(jobs)


def check_variant(variant: str, from_source: bool) -> None:
    from elkbuild.deps.recipes import VARIANTS

    if variant and variant not in VARIANTS:
        raise UsageError(f"--variant {variant!r}: not a recipe variant", f"choose one of: {', '.join(VARIANTS)}")
    if variant and from_source and variant != "source":
        raise UsageError(f"--from-source with --variant {variant}", "give one of them")


@elk_task(help={
    "toolchain": "toolchain to build for (default: the project's toolchain)",
    "only": "build only this dependency (e.g. tflite, onnxruntime)",
    "offline": "never touch the network; list what is missing from the source cache",
    "jobs": "parallel compile jobs (default: one per core)",
    "local": "build on this host instead of in the toolchain's container",
    "from_source": "use a recipe that compiles the dependency where one exists",
    "variant": "prefer recipes of this variant: source, or debian (Debian's own engine builds)",
    "allow_unpinned": "download sources whose sha256 is not known yet and pin them in elkbuild-deps.lock.yaml",
    "force": "rebuild even when every input is unchanged",
    "dry_run": "print every download, command and file the build would make, and change nothing",
    "json": "print one JSON object per dependency",
}, auto_shortflags=False)
def build_deps(c, toolchain="", only="", offline=False, jobs=0, local=False, from_source=False,
               variant="", allow_unpinned=False, force=False, dry_run=False, json=False,
               verbose=False):
    """Fetch, patch, build and stage dependencies into build/deps/<toolchain>/<name>-<version>/."""
    from elkbuild.reporting import emit_json
    from elkbuild.deps import commands
    from elkbuild.executor import LocalExecutor

    jobs = check_jobs(jobs)
    check_variant(variant, from_source)
    reporter = Reporter(verbose=verbose, quiet=json)
    runner = commands.make_runner(load(), toolchain or None, local=local, offline=offline, jobs=jobs,
                                  from_source=from_source, variant=variant,
                                  allow_unpinned=allow_unpinned, reporter=reporter,
                                  fetch_executor=LocalExecutor(dry_run=dry_run), dry_run=dry_run)
    results = commands.build_deps(runner, only or None, force=force)
    if json:
        for result in results:
            emit_json(result.as_json())
    else:
        commands.print_summary(results)


@elk_task(help={
    "toolchain": "toolchain whose recipes to prefetch (default: the project's toolchain)",
    "only": "prefetch only this dependency",
    "from_source": "prefetch the from-source recipes' inputs",
    "variant": "prefetch the inputs of this variant's recipes (source or debian)",
    "allow_unpinned": "download sources whose sha256 is not known yet and pin them",
    "update": "resolve Debian packages again (moving suites like sid) and re-pin them",
    "json": "print what was fetched as one JSON object",
}, auto_shortflags=False)
def fetch_sources(c, toolchain="", only="", from_source=False, variant="", allow_unpinned=False,
                  update=False, json=False, verbose=False):
    """Download every source the toolchain's recipes need into the verified source cache."""
    from elkbuild.reporting import emit_json
    from elkbuild.deps import commands
    from elkbuild.executor import LocalExecutor

    check_variant(variant, from_source)
    reporter = Reporter(verbose=verbose, quiet=json)
    runner = commands.make_runner(load(), toolchain or None, from_source=from_source,
                                  variant=variant, allow_unpinned=allow_unpinned, update=update,
                                  reporter=reporter, fetch_executor=LocalExecutor())
    report = commands.fetch_sources(runner, only or None)
    if json:
        emit_json({"fetched": report.fetched, "cached": report.cached, "pinned": report.pinned_now})
    else:
        print(f"{len(report.fetched)} fetched, {len(report.cached)} already cached")
        for pin in report.pinned_now:
            print(f"pinned: {pin}")
