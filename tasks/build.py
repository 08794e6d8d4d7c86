"""Tasks: cross-building plugins into deployable bundles."""

from __future__ import annotations

from elkbuild.cli import elk_task
from elkbuild.reporting import Reporter

from tasks.deps import check_jobs
from tasks.shell import load


@elk_task(help={"plugin": "a plugin project in plugins/ (repeatable; default: all of them)",
                "toolchain": "toolchain to build with (default: the project's toolchain)",
                "config": "CMake build configuration: Release or Debug",
                "board_profile": "board whose ABI the bundle must fit: elk-0.11, elk-1.x or "
                                 "emulated (default: the toolchain's; debian-arm64: both Elk lines)",
                "local": "build on this host instead of in the toolchain's container",
                "jobs": "parallel compile jobs (default 2)",
                "force": "rebuild even when every input is unchanged",
                "dry_run": "print every command the build would run and every file it would "
                           "write, and change nothing",
                "json": "print one JSON object per plugin"},
          auto_shortflags=False, iterable=["plugin"])
def build(c, plugin=None, toolchain="", config="Release", board_profile="", local=False, jobs=0,
          force=False, dry_run=False, json=False, verbose=False):
    """Cross-build plugin projects into deployable bundles (engine .so files, model, ABI gate)."""
    from elkbuild.build.cmake import CONFIGS
    from elkbuild.errors import UsageError
    from elkbuild.executor import LocalExecutor
    from elkbuild.plugin.cross_build import build_plugins
    from elkbuild.reporting import emit_json

    if config not in CONFIGS:
        raise UsageError(f"--config {config!r}: not a build configuration",
                         f"choose {' or '.join(CONFIGS)}")
    builds = build_plugins(load(), list(plugin or ()), toolchain_name=toolchain or None,
                           config=config, profile_name=board_profile or None, local=local,
                           jobs=check_jobs(jobs), force=force,
                           reporter=Reporter(verbose=verbose, quiet=json),
                           host=LocalExecutor(dry_run=dry_run), dry_run=dry_run)
    for result in builds:
        name = result.project.identity.name
        if json:
            emit_json(result.as_json())
        elif result.status == "up to date":
            print(f"{name}: up to date ({result.bundle.path})")
        elif result.status == "would build":
            print(f"{name}: would build ({', '.join(result.changed)}) -> {result.destination}")
        else:
            libraries = ", ".join(p.name for p in result.bundle.libraries) or "none"
            print(f"{name}: built in {result.seconds:.0f} s -> "
                  f"{result.bundle.path} (bundled: {libraries}; ABI gate: {', '.join(result.profiles)} ok)")
