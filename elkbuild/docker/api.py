"""The Docker engine's API: the one module that calls the Docker SDK.

`DockerApi` is a connected engine seen through the calls elkbuild makes: engine
facts, images (inspect, build, import, remove), volumes, and the short-lived
containers of ContainerExecutor (create, attach, start, wait, kill, remove).
What changes the engine's images is logged and recorded in the host executor's
history like any command, and only said, not done, when that executor is dry-run.
The SDK's exceptions stop here: callers see DockerApiError and NoSuchImage.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import docker
from docker.errors import APIError, BuildError, DockerException, ImageNotFound, NotFound
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ReadTimeout

from elkbuild.errors import ElkbuildError
from elkbuild.executor import Executor

log = logging.getLogger("elkbuild.docker")


class DockerApiError(ElkbuildError):
    """The engine refused a request; the message is the engine's explanation."""


class NoSuchImage(DockerApiError):
    """The image asked for is not in the engine."""


@dataclass(frozen=True)
class Image:
    id: str
    labels: Mapping[str, str]


def _explain(error: Exception) -> str:
    return str(getattr(error, "explanation", None) or error)


class DockerApi:
    """A Docker engine that answered; `host` is the executor whose dry-run flag and
    history the engine's changes follow."""

    def __init__(self, client: Any, host: Executor) -> None:
        self.sdk = client  # the docker.DockerClient (tests inspect the engine with it)
        self.host = host

    # ---- connecting --------------------------------------------------------------

    @classmethod
    def connect(cls, url: str | None, host: Executor, *, timeout: int = 600) -> DockerApi | None:
        """The engine at `url` (None: DOCKER_HOST or the default socket) if it answers."""
        try:
            client = (docker.DockerClient(base_url=url, version="auto", timeout=timeout) if url
                      else docker.from_env(version="auto", timeout=timeout))
            client.ping()
            return cls(client, host)
        except (DockerException, OSError) as error:
            log.debug("no engine at %s: %s", url or "the default socket", error)
            return None

    @classmethod
    def not_started(cls, url: str, host: Executor) -> DockerApi:
        """A dry run's engine: addressed, never asked (nothing was started to answer)."""
        return cls(docker.DockerClient(base_url=url, version="1.41"), host)

    def close(self) -> None:
        self.sdk.close()

    # ---- the engine --------------------------------------------------------------

    @property
    def url(self) -> str:
        """unix://SOCKET for local engines (the SDK's base_url hides the socket path)."""
        socket_path = getattr(getattr(self.sdk.api, "_custom_adapter", None), "socket_path", None)
        return f"unix://{socket_path}" if socket_path else str(self.sdk.api.base_url)

    def info(self) -> dict[str, Any]:
        return self.sdk.info()

    def version(self) -> dict[str, Any]:
        return self.sdk.version()

    def engine_id(self) -> str:
        """A short name of this engine, safe in a file name."""
        return str(self.info().get("ID", "engine")).replace(":", "")[:12]

    # ---- images ------------------------------------------------------------------

    def image(self, tag: str) -> Image | None:
        try:
            found = self.sdk.images.get(tag)
        except ImageNotFound:
            return None
        return Image(found.id, dict(found.labels or {}))

    def require_image(self, tag: str) -> Image:
        found = self.image(tag)
        if found is None:
            raise NoSuchImage(f"image {tag} is not in the engine")
        return found

    def build(self, context: Path, tag: str, *, buildargs: Mapping[str, str],
              labels: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Build `context`'s Dockerfile with the host's network; yields the engine's
        progress messages (a dict with "error" when a step failed)."""
        if not self.host._record("docker build", context, "->", tag):
            return
        try:
            yield from self.sdk.api.build(
                path=str(context), tag=tag, buildargs=dict(buildargs), labels=dict(labels),
                network_mode="host", rm=True, forcerm=True, pull=False, decode=True)
        except (APIError, BuildError) as error:
            raise DockerApiError(_explain(error)) from None

    def import_image(self, tarball: Path, repository: str, tag: str, changes: Sequence[str]) -> None:
        """`docker import`: a root file system tarball becomes an image."""
        if self.host._record("docker import", tarball, "->", f"{repository}:{tag}"):
            self.sdk.api.import_image_from_file(str(tarball), repository=repository, tag=tag,
                                                   changes=list(changes))

    def remove_image(self, image_id: str) -> None:
        """Drop an image; one still in use is kept (and said so in the log)."""
        if not self.host._record("docker rmi", image_id):
            return
        try:
            self.sdk.images.remove(image_id, noprune=False)
        except (APIError, ImageNotFound) as error:
            log.debug("kept old image %s: %s", image_id[:19], error)

    # ---- volumes and containers (ContainerExecutor's runs) -----------------------

    def create_volume(self, name: str, labels: Mapping[str, str]) -> None:
        self.sdk.volumes.create(name, labels=dict(labels))

    def run_to_end(self, image: str, argv: Sequence[str], *, user: str,
                   volumes: Mapping[str, Mapping[str, str]]) -> None:
        """One command in a throw-away container without network."""
        self.sdk.containers.run(image, list(argv), user=user, remove=True, network_mode="none",
                                   entrypoint=[], volumes=dict(volumes))

    def create_container(self, image: str, argv: Sequence[str], *, user: str,
                         environment: Mapping[str, str], workdir: str | None, stdin: bool,
                         labels: Mapping[str, str], binds: Mapping[str, Mapping[str, str]],
                         network_mode: str) -> str:
        """A new, not yet started container (with init as pid 1); returns its id."""
        try:
            created = self.sdk.api.create_container(
                image, command=list(argv), user=user, environment=dict(environment),
                working_dir=workdir, stdin_open=stdin,  # with detach=False: StdinOnce too
                labels=dict(labels),
                host_config=self.sdk.api.create_host_config(
                    binds=dict(binds), network_mode=network_mode, init=True))
        except ImageNotFound:
            raise NoSuchImage(f"image {image} is not built") from None
        except APIError as error:
            raise DockerApiError(f"cannot create a container of {image}: {_explain(error)}") from None
        return created["Id"]

    def output(self, cid: str) -> Iterator[tuple[bytes | None, bytes | None]]:
        """(stdout, stderr) chunks of a container from its start; attach before `start`."""
        chunks = self.sdk.api.attach(cid, stdout=True, stderr=True, stream=True, logs=True,
                                        demux=True)

        def read() -> Iterator[tuple[bytes | None, bytes | None]]:
            try:
                yield from chunks
            except (RequestsConnectionError, OSError) as error:
                log.debug("output stream ended: %s", error)

        return read()

    def stdin(self, cid: str) -> ContainerStdin:
        """The container's stdin; open it before `start`, write it after."""
        return ContainerStdin(self.sdk.api.attach_socket(cid, params={"stdin": 1, "stream": 1}))

    def start(self, cid: str) -> None:
        self.sdk.api.start(cid)

    def wait(self, cid: str, timeout: float | None) -> int | None:
        """The container's exit status, or None when `timeout` passed first."""
        try:
            return int(self.sdk.api.wait(cid, timeout=timeout).get("StatusCode", 1))
        except (ReadTimeout, RequestsConnectionError):
            return None

    def kill(self, cid: str) -> None:
        try:
            self.sdk.api.kill(cid)
        except APIError:
            pass

    def remove_container(self, cid: str) -> None:
        try:
            self.sdk.api.remove_container(cid, force=True)
        except (APIError, NotFound, RequestsConnectionError):
            log.debug("container %s already gone", cid[:12])


class ContainerStdin:
    """Writes all of a command's input, then closes its stdin (EOF for the command)."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock

    def send_and_close(self, data: bytes) -> None:
        raw = getattr(self.sock, "_sock", self.sock)
        raw.sendall(data)
        try:
            raw.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.sock.close()
