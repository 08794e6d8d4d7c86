"""What the docker tasks do: resolve the toolchain, talk to the engine, show progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elkbuild.docker.engine import (
    connect,
    engine_description,
    private_engine,
    reachable_engine,
    start_private_engine,
    stop_private_engine,
)
from elkbuild.docker.images import ImageResult, ensure_image
from elkbuild.errors import UsageError
from elkbuild.reporting import Reporter
from elkbuild.executor import LocalExecutor
from elkbuild.build.toolchains import Toolchain, get_toolchain


def image_toolchain(name: str, *, sdk_installer: str = "", sdk_sha256: str = "",
                    cfg: Any = None) -> Toolchain:
    """The toolchain whose image to build (native runs in debian-arm64's image)."""
    toolchain = get_toolchain(name, cfg)
    if toolchain.definition.get("image_of"):
        toolchain = get_toolchain(toolchain.definition["image_of"], cfg)
    if sdk_installer or sdk_sha256:
        if not toolchain.sdk:
            raise UsageError(f"--sdk-installer/--sdk-sha256 apply to elk-sdk toolchains, not {name}",
                             "add --toolchain elk-sdk-<version>")
        if sdk_sha256 and (len(sdk_sha256) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sdk_sha256)):
            raise UsageError(f"--sdk-sha256 {sdk_sha256!r}: not a sha256 (64 hex digits)")
        toolchain = toolchain.with_installer(Path(sdk_installer) if sdk_installer else None,
                                             sdk_sha256 or None)
    return toolchain


def build_image(cfg: Any, toolchain: Toolchain, *, seed_base: bool = False, force: bool = False,
                mirror: str | None = None, display: Reporter | None = None) -> ImageResult:
    display = display or Reporter(quiet=True)
    executor = LocalExecutor()
    kwargs: dict[str, Any] = {"mirror": mirror} if mirror else {}
    with display.live(f"image for {toolchain.name}"):
        client = connect(cfg.cache_dir, executor)
        return ensure_image(client, toolchain, executor, cfg.cache_dir, force=force,
                            seed_base=seed_base, on_line=display.line,
                            on_progress=display.download, **kwargs)


def engine_command(cfg: Any, *, start: bool = False, stop: bool = False) -> dict[str, Any]:
    """Start, stop or describe the engine elkbuild uses."""
    if start and stop:
        raise UsageError("--start and --stop exclude each other")
    executor = LocalExecutor()
    engine = private_engine(cfg.cache_dir)
    if stop:
        return {"stopped": stop_private_engine(executor, cfg.cache_dir), "url": engine.url}
    client = start_private_engine(executor, cfg.cache_dir) if start else reachable_engine(cfg.cache_dir)
    if client is None:
        return {"running": False, "private_url": engine.url}
    return {"running": True, **engine_description(client)}
