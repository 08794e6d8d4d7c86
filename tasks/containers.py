"""Tasks: the Docker engine and the toolchain images (a module not named `docker`:
invoke puts tasks/ on sys.path, where it would hide the Docker SDK)."""

from __future__ import annotations

from elkbuild.cli import elk_task

from tasks.shell import load


def _with_sdk_installer(toolchain, name: str, installer: str, sha256: str):
    """The Elk SDK toolchain with --sdk-installer/--sdk-sha256 applied."""
    from pathlib import Path

    from elkbuild.errors import UsageError

    if not toolchain.sdk:
        raise UsageError(f"--sdk-installer/--sdk-sha256 apply to elk-sdk toolchains, not {name}",
                         "add --toolchain elk-sdk-<version>")
    if sha256 and (len(sha256) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sha256)):
        raise UsageError(f"--sdk-sha256 {sha256!r}: not a sha256 (64 hex digits)")
    return toolchain.with_installer(Path(installer) if installer else None, sha256 or None)


@elk_task(help={
    "toolchain": "toolchain whose image to build (default: the project's toolchain)",
    "seed_base": "make the base image from Debian packages even if it exists (air-gapped hosts)",
    "sdk_installer": "a local Elk-PI SDK installer (.sh) instead of downloading it",
    "sdk_sha256": "the installer's sha256, checked before it is used",
    "force": "rebuild even when the image's inputs are unchanged",
    "mirror": "Debian mirror for the base image and its own suite's packages (default: "
              "deb.debian.org); the sysroot's suite comes from the toolchain's sysroot.mirror",
    "json": "print the result as one JSON object",
})
def docker_image(c, toolchain="", seed_base=False, sdk_installer="", sdk_sha256="", force=False,
                 mirror="", json=False, verbose=False):
    """Build a toolchain's Docker image; reused while its inputs are unchanged."""
    from elkbuild.docker.commands import build_image, image_toolchain
    from elkbuild.executor import LocalExecutor
    from elkbuild.reporting import Reporter, emit_json

    cfg = load({"toolchain": toolchain})
    chosen = image_toolchain(cfg.toolchain, cfg=cfg)
    if sdk_installer or sdk_sha256:
        chosen = _with_sdk_installer(chosen, cfg.toolchain, sdk_installer, sdk_sha256)
    result = build_image(cfg, chosen, host=LocalExecutor(), seed_base=seed_base, force=force,
                         mirror=mirror or None, display=Reporter(verbose=verbose, quiet=json))
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
    from elkbuild.docker.commands import engine_command
    from elkbuild.errors import UsageError
    from elkbuild.executor import LocalExecutor
    from elkbuild.reporting import emit_json

    if start and stop:
        raise UsageError("--start and --stop exclude each other")
    state = engine_command(load(), LocalExecutor(), start=start, stop=stop)
    if json:
        emit_json(state)
    else:
        print("  ".join(f"{key}={value}" for key, value in sorted(state.items())))
