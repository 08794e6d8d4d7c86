"""What the docker tasks do: resolve the toolchain, talk to the engine, show progress."""

from __future__ import annotations

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
from elkbuild.reporting import Reporter
from elkbuild.executor import Executor
from elkbuild.build.toolchains import Toolchain, get_toolchain


def image_toolchain(name: str, *, cfg: Any = None) -> Toolchain:
    """The toolchain whose image to build (native runs in debian-arm64's image)."""
    toolchain = get_toolchain(name, cfg)
    if toolchain.definition.get("image_of"):
        toolchain = get_toolchain(toolchain.definition["image_of"], cfg)
    return toolchain


def build_image(cfg: Any, toolchain: Toolchain, *, host: Executor,
                seed_base: bool = False, force: bool = False, mirror: str | None = None,
                display: Reporter | None = None) -> ImageResult:
    """The toolchain's image, built unless unchanged; `host` runs this machine's
    commands (the engine, the base image's mmdebstrap)."""
    display = display or Reporter(quiet=True)
    executor = host
    kwargs: dict[str, Any] = {"mirror": mirror} if mirror else {}
    with display.live(f"image for {toolchain.name}"):
        engine = connect(cfg.cache_dir, executor)
        return ensure_image(engine, toolchain, executor, cfg.cache_dir, force=force,
                            seed_base=seed_base, on_line=display.line,
                            on_progress=display.download, **kwargs)


def engine_command(cfg: Any, host: Executor, *, start: bool = False,
                   stop: bool = False) -> dict[str, Any]:
    """Start, stop or describe the engine elkbuild uses."""
    engine = private_engine(cfg.cache_dir)
    if stop:
        return {"stopped": stop_private_engine(host, cfg.cache_dir), "url": engine.url}
    client = (start_private_engine(host, cfg.cache_dir) if start
              else reachable_engine(cfg.cache_dir, host))
    if client is None:
        return {"running": False, "private_url": engine.url}
    return {"running": True, **engine_description(client)}
