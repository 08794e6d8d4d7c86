"""Running commands in a toolchain's container through the Docker SDK.

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
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import docker
from docker.errors import APIError, ImageNotFound, NotFound
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ReadTimeout

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
    """Runs each command in a fresh container of `image`."""

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
    client: Any = None  # docker.DockerClient; connected on first use
    _ccache_ready: bool = field(default=False, repr=False)

    # ---- engine ------------------------------------------------------------------

    def docker_client(self) -> docker.DockerClient:
        if self.client is None:
            cache = self.cache_dir or Path.home() / ".cache" / "elkbuild"
            self.client = connect(Path(cache), LocalExecutor())
        return self.client

    def _check_image(self, client: docker.DockerClient) -> None:
        try:
            client.images.get(self.image)
        except ImageNotFound:
            toolchain = self.base_env.get("ELKBUILD_TOOLCHAIN", "<toolchain>")
            raise ContainerError(f"image {self.image} is not built",
                                 f"run `invoke docker-image --toolchain {toolchain}`") from None

    def _prepare_ccache(self, client: docker.DockerClient) -> None:
        """The volume starts out root-owned; hand it to the invoking user once."""
        if self._ccache_ready or not self.ccache_volume:
            return
        client.volumes.create(self.ccache_volume, labels={CONTAINER_LABEL: "ccache"})
        client.containers.run(self.image, ["chown", self.user, CCACHE_MOUNT], user="0:0",
                              remove=True, network_mode="none", entrypoint=[],
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
        client = self.docker_client()
        self._check_image(client)
        for path in self.mounts:  # a missing bind source would be created root-owned
            path.mkdir(parents=True, exist_ok=True)
        self._prepare_ccache(client)
        environment = {"HOME": "/tmp", "CCACHE_DIR": CCACHE_MOUNT, **self.base_env, **(env or {})}
        try:
            container = client.api.create_container(
                self.image, command=[*self.prefix, *argv], user=self.user,
                environment=environment, working_dir=cwd or self.workdir,
                stdin_open=input is not None,  # with detach=False: StdinOnce too
                labels={CONTAINER_LABEL: self.name},
                host_config=client.api.create_host_config(
                    binds=self.volumes(), network_mode=self.network_mode, init=True))
        except ImageNotFound:
            raise ContainerError(f"image {self.image} is not built") from None
        except APIError as error:
            raise ContainerError(f"cannot create a container of {self.image}: "
                                 f"{error.explanation or error}") from None
        cid = container["Id"]
        try:
            return self._attach_and_wait(client, cid, argv, input, timeout, on_line)
        finally:
            try:
                client.api.remove_container(cid, force=True)
            except (APIError, NotFound, RequestsConnectionError):
                log.debug("container %s already gone", cid[:12])

    def _attach_and_wait(self, client: docker.DockerClient, cid: str, argv: list[str],
                         input: str | bytes | None, timeout: float | None,
                         on_line: LineSink | None) -> Completed:
        output = client.api.attach(cid, stdout=True, stderr=True, stream=True, logs=True, demux=True)
        stdin_sock = None
        if input is not None:
            stdin_sock = client.api.attach_socket(cid, params={"stdin": 1, "stream": 1})
        client.api.start(cid)
        if stdin_sock is not None:
            _send_and_close(stdin_sock, input.encode() if isinstance(input, str) else input)
        out = _Lines(on_line)
        err = _Lines(on_line)
        reader = threading.Thread(target=_pump, args=(output, out, err), daemon=True)
        reader.start()
        try:
            status = client.api.wait(cid, timeout=timeout)
            code = int(status.get("StatusCode", 1))
        except (ReadTimeout, RequestsConnectionError):
            log.warning("[%s] %s: timed out after %s s, killing it", self.name, argv[0], timeout)
            try:
                client.api.kill(cid)
            except APIError:
                pass
            code = -9
        reader.join(timeout=30)
        out.flush()
        err.flush()
        return Completed(argv, code, out.text(), err.text())


def _send_and_close(sock: Any, data: bytes) -> None:
    raw = getattr(sock, "_sock", sock)
    raw.sendall(data)
    try:
        raw.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    sock.close()


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


def _pump(stream: Any, out: _Lines, err: _Lines) -> None:
    try:
        for stdout, stderr in stream:
            if stdout:
                out.feed(stdout)
            if stderr:
                err.feed(stderr)
    except (RequestsConnectionError, OSError) as error:
        log.debug("output stream ended: %s", error)


EXECUTORS["container"] = ContainerExecutor
