"""Tasks: Docker engine and build images."""

from __future__ import annotations

from elkbuild.cli import elk_task

from tasks.shell import load

@elk_task(help={
    "toolchain": "toolchain whose image to build (default: the project's toolchain)",
    "seed_base": "make the base image from Debian packages even if it exists (air-gapped hosts)",
    "sdk_installer": "a local Elk-PI SDK installer (.sh) instead of downloading it",
    "sdk_sha256": "the installer's sha256, checked before it is used",
    "force": "rebuild even when the image's inputs are unchanged",
    "mirror": "Debian mirror for the base image and the sysroot (default: deb.debian.org)",
    "json": "print the result as one JSON object",
})
def docker_image(c, toolchain="", seed_base=False, sdk_installer="", sdk_sha256="", force=False,
                 mirror="", json=False, verbose=False):
    """Build a toolchain's Docker image; reused while its inputs are unchanged."""
    from elkbuild.reporting import emit_json
    from elkbuild.docker.commands import build_image, image_toolchain
    from elkbuild.reporting import Reporter

    cfg = load()
    chosen = image_toolchain(toolchain or cfg.toolchain, sdk_installer=sdk_installer,
                             sdk_sha256=sdk_sha256, cfg=cfg)
    result = build_image(cfg, chosen, seed_base=seed_base, force=force, mirror=mirror or None,
                         display=Reporter(verbose=verbose, quiet=json))
    if json:
        emit_json(result.as_dict())
    else:
        how = "unchanged, reused" if result.reused else "built"
        seeded = " (base image seeded from Debian packages)" if result.seeded_base else ""
        print(f"{result.tag}: {how} in {result.seconds:.1f} s{seeded}")


@elk_task(help={
    "start": "start elkbuild's private Docker engine if no engine answers",
    "stop": "stop elkbuild's private Docker engine",
    "json": "print the engine's state as one JSON object",
})
def docker_engine(c, start=False, stop=False, json=False):
    """Show, start or stop the Docker engine elkbuild builds with."""
    from elkbuild.reporting import emit_json
    from elkbuild.docker.commands import engine_command

    state = engine_command(load(), start=start, stop=stop)
    if json:
        emit_json(state)
    else:
        print("  ".join(f"{key}={value}" for key, value in sorted(state.items())))
