"""Tasks: cross-building plugins into deployable bundles."""

from __future__ import annotations

from elkbuild.cli import elk_task
from elkbuild.reporting import Reporter

from tasks.shell import load


@elk_task(help={"plugin": "a plugin project in plugins/ (repeatable; default: all of them)",
                "toolchain": "toolchain to build with (default: the project's toolchain)",
                "config": "CMake build configuration: Release or Debug",
                "board_profile": "board whose ABI the bundle must fit: elk-0.11, elk-1.x or "
                                 "emulated (default: the toolchain's)",
                "local": "build on this host instead of in the toolchain's container",
                "jobs": "parallel compile jobs (default 2)",
                "force": "rebuild even when every input is unchanged",
                "json": "print one JSON object per plugin"},
          auto_shortflags=False, iterable=["plugin"])
def build(c, plugin=None, toolchain="", config="Release", board_profile="", local=False, jobs=0,
          force=False, json=False, verbose=False):
    """Cross-build plugin projects into deployable bundles (engine .so files, model, ABI gate)."""
    from elkbuild.reporting import emit_json
    from elkbuild.plugin.cross_build import build_plugins

    builds = build_plugins(load(), list(plugin or ()), toolchain_name=toolchain or None,
                           config=config, profile_name=board_profile or None, local=local,
                           jobs=int(jobs), force=force,
                           reporter=Reporter(verbose=verbose, quiet=json))
    for result in builds:
        if json:
            emit_json(result.as_json())
        elif result.status == "up to date":
            print(f"{result.project.identity.name}: up to date ({result.bundle.path})")
        else:
            libraries = ", ".join(p.name for p in result.bundle.libraries) or "none"
            print(f"{result.project.identity.name}: built in {result.seconds:.0f} s -> "
                  f"{result.bundle.path} (bundled: {libraries}; ABI gate: {result.profile} ok)")
