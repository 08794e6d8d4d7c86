"""Running commands in a toolchain's container: the container backend of Executor.

The container sees the project, the elkbuild cache and elkbuild's own tree at
the same paths as the host, runs as the invoking user's uid:gid (so nothing it
writes is owned by root), keeps compiler caches in a persistent ccache volume,
uses the host's network, and streams its output line by line while it runs.
One short-lived container per command: nothing lingers between commands.
"""

from __future__ import annotations

import codecs
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

from elkbuild.docker.api import DockerApi, DockerApiError
from elkbuild.docker.engine import connect
from elkbuild.errors import ElkbuildError
from elkbuild.executor import EXECUTORS, Completed, Executor, LineSink, LocalExecutor

log = logging.getLogger("elkbuild.exec")

CCACHE_VOLUME = "elkbuild-ccache"
CCACHE_MOUNT = "/ccache"
CONTAINER_LABEL = "org.elkbuild.executor"


class ContainerError(ElkbuildError):
    """The engine refused to run a container (image missing, engine gone)."""


@dataclass
class ContainerExecutor(Executor):
    """Runs each command in a fresh container of `image`.

    `host` is the executor of this machine, which starts a private engine when none
    answers; `client` is the engine, connected on first use unless given.
    """

    name: str = "container"
    image: str = ""
    mounts: list[Path] = field(default_factory=list)
    prefix: list[str] = field(default_factory=list)
    base_env: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None
    cache_dir: Path | None = None
    user: str = field(default_factory=lambda: f"{os.getuid()}:{os.getgid()}")
    ccache_volume: str | None = CCACHE_VOLUME
    network_mode: str = "host"
    host: Executor | None = None
    client: DockerApi | None = None
    _ccache_ready: bool = field(default=False, repr=False)

    # ---- engine ------------------------------------------------------------------

    def engine(self) -> DockerApi:
        if self.client is None:
            cache = self.cache_dir or Path.home() / ".cache" / "elkbuild"
            # Without a given host executor, this machine's own, under the same dry-run
            # flag and history as this executor.
            host = self.host or LocalExecutor(dry_run=self.dry_run, history=self.history)
            self.client = connect(Path(cache), host)
        return self.client

    def _check_image(self, engine: DockerApi) -> None:
        if engine.image(self.image) is None:
            toolchain = self.base_env.get("ELKBUILD_TOOLCHAIN", "<toolchain>")
            raise ContainerError(f"image {self.image} is not built",
                                 f"run `invoke docker-image --toolchain {toolchain}`")

    def _prepare_ccache(self, engine: DockerApi) -> None:
        """The volume starts out root-owned; hand it to the invoking user once."""
        if self._ccache_ready or not self.ccache_volume:
            return
        engine.create_volume(self.ccache_volume, {CONTAINER_LABEL: "ccache"})
        engine.run_to_end(self.image, ["chown", self.user, CCACHE_MOUNT], user="0:0",
                          volumes={self.ccache_volume: {"bind": CCACHE_MOUNT, "mode": "rw"}})
        self._ccache_ready = True

    def volumes(self) -> dict[str, dict[str, str]]:
        binds = {str(path): {"bind": str(path), "mode": "rw"} for path in self.mounts}
        if self.ccache_volume:
            binds[self.ccache_volume] = {"bind": CCACHE_MOUNT, "mode": "rw"}
        return binds

    # ---- running -----------------------------------------------------------------

    def _run(self, argv: list[str], *, cwd: str | None, env: Mapping[str, str] | None,
             input: str | bytes | None, timeout: float | None,
             on_line: LineSink | None) -> Completed:
        engine = self.engine()
        self._check_image(engine)
        for path in self.mounts:  # a missing bind source would be created root-owned
            path.mkdir(parents=True, exist_ok=True)
        self._prepare_ccache(engine)
        environment = {"HOME": "/tmp", "CCACHE_DIR": CCACHE_MOUNT, **self.base_env, **(env or {})}
        try:
            cid = engine.create_container(
                self.image, [*self.prefix, *argv], user=self.user, environment=environment,
                workdir=cwd or self.workdir, stdin=input is not None,
                labels={CONTAINER_LABEL: self.name}, binds=self.volumes(),
                network_mode=self.network_mode)
        except DockerApiError as error:
            raise ContainerError(error.message) from None
        try:
            return self._attach_and_wait(engine, cid, argv, input, timeout, on_line)
        finally:
            engine.remove_container(cid)

    def _attach_and_wait(self, engine: DockerApi, cid: str, argv: list[str],
                         input: str | bytes | None, timeout: float | None,
                         on_line: LineSink | None) -> Completed:
        output = engine.output(cid)
        stdin = engine.stdin(cid) if input is not None else None
        engine.start(cid)
        if stdin is not None:
            stdin.send_and_close(input.encode() if isinstance(input, str) else input)
        out = _Lines(on_line)
        err = _Lines(on_line)
        reader = threading.Thread(target=_pump, args=(output, out, err), daemon=True)
        reader.start()
        code = engine.wait(cid, timeout)
        if code is None:
            log.warning("[%s] %s: timed out after %s s, killing it", self.name, argv[0], timeout)
            engine.kill(cid)
            code = -9
        reader.join(timeout=30)
        out.flush()
        err.flush()
        return Completed(argv, code, out.text(), err.text())


class _Lines:
    """Collects one output stream and hands complete lines to the sink as they come."""

    def __init__(self, sink: LineSink | None) -> None:
        self.sink = sink
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.parts: list[str] = []
        self.pending = ""

    def feed(self, data: bytes) -> None:
        text = self.decoder.decode(data)
        self.parts.append(text)
        if self.sink is None:
            return
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.sink(line.rstrip("\r"))

    def flush(self) -> None:
        tail = self.decoder.decode(b"", final=True)
        if tail:
            self.parts.append(tail)
            self.pending += tail
        if self.sink is not None and self.pending:
            self.sink(self.pending)
        self.pending = ""

    def text(self) -> str:
        return "".join(self.parts)


def _pump(chunks: Iterator[tuple[bytes | None, bytes | None]], out: _Lines, err: _Lines) -> None:
    for stdout, stderr in chunks:
        if stdout:
            out.feed(stdout)
        if stderr:
            err.feed(stderr)


EXECUTORS["container"] = ContainerExecutor
