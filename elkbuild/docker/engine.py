"""Finding a Docker engine, starting a private one, and seeding a base image.

Builds need a real engine. The one the user already runs (DOCKER_HOST or the
default socket) is used when it answers; otherwise elkbuild can start a private
dockerd whose data lives in the elkbuild cache (overlay2 storage where the
kernel allows it, vfs otherwise; no iptables, no bridge: it works inside
containers and CI sandboxes; containers use the host's network). Base images cannot be pulled without a registry, so the one the
Dockerfiles start from is made from Debian packages (mmdebstrap -> docker import).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from elkbuild.docker.api import DockerApi
from elkbuild.errors import ElkbuildError
from elkbuild.executor import Executor, LineSink, require
from elkbuild.locks import locked

log = logging.getLogger("elkbuild.docker")

DEBIAN_MIRROR = "http://deb.debian.org/debian"
SEED_LABEL = "org.elkbuild.seeded"
# dpkg drops these while installing: smaller images matter on vfs, where every
# layer is a full copy.
_DPKG_EXCLUDES = ["/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*",
                  "/usr/share/locale/*", "/usr/share/lintian/*"]


class EngineError(ElkbuildError):
    """No Docker engine could be reached or started."""


@dataclass(frozen=True)
class PrivateEngine:
    """Where elkbuild's own dockerd keeps its state, its socket and its log."""

    home: Path

    @property
    def data_root(self) -> Path:
        return self.home / "data"

    @property
    def exec_root(self) -> Path:
        return self.home / "exec"

    @property
    def socket(self) -> Path:
        # A unix socket path must stay under ~108 bytes; deep cache dirs get a short one.
        path = self.home / "docker.sock"
        if len(str(path)) < 100:
            return path
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:10]
        return Path("/tmp") / f"elkbuild-docker-{digest}" / "docker.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.home / "dockerd.pid"

    @property
    def launcher_pidfile(self) -> Path:
        return self.home / "launcher.pid"

    @property
    def logfile(self) -> Path:
        return self.home / "dockerd.log"

    @property
    def driver_file(self) -> Path:
        return self.home / "storage-driver"


def private_engine(cache_dir: Path) -> PrivateEngine:
    return PrivateEngine(Path(cache_dir).expanduser().resolve() / "docker-engine")


def choose_storage_driver(executor: Executor, engine: PrivateEngine) -> str:
    """overlay2 where the kernel and file system allow it, else vfs.

    vfs works everywhere but copies the whole image for every layer and every
    container (a 1 GB image costs ~40 s per `docker run`); overlay2 does not. The
    choice is remembered: images made under one driver are invisible to the other.
    """
    if engine.driver_file.is_file():
        return engine.driver_file.read_text().strip()
    probe = engine.home / "overlay-probe"
    dirs = {name: probe / name for name in ("lower", "upper", "work", "merged")}
    for folder in dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}"
    mounted = executor.run(["mount", "-t", "overlay", "overlay", "-o", options, str(dirs["merged"])],
                           check=False)
    if mounted.ok:
        executor.run(["umount", str(dirs["merged"])], check=False)
    shutil.rmtree(probe, ignore_errors=True)
    driver = "overlay2" if mounted.ok else "vfs"
    engine.driver_file.write_text(driver + "\n")
    return driver


def reachable_engine(cache_dir: Path, executor: Executor) -> DockerApi | None:
    """The user's engine if it answers, else elkbuild's private one if it runs."""
    engine = private_engine(cache_dir)
    if os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists():
        api = DockerApi.connect(None, executor)
        if api:
            return api
    if engine.socket.exists():
        return DockerApi.connect(engine.url, executor)
    return None


def start_private_engine(executor: Executor, cache_dir: Path, *,
                         wait_seconds: float = 60.0) -> DockerApi:
    """Start elkbuild's own dockerd (or reuse it when already running)."""
    engine = private_engine(cache_dir)
    with locked(engine.home / "start.lock"):
        api = DockerApi.connect(engine.url, executor) if engine.socket.exists() else None
        if api:
            return api
        dockerd = require("dockerd", "install Docker's engine: apt-get install docker.io")
        if os.geteuid() != 0:
            raise EngineError("no Docker engine is reachable and a private one needs root",
                              "start Docker (systemctl start docker) or set DOCKER_HOST")
        for folder in (engine.data_root, engine.exec_root, engine.socket.parent):
            folder.mkdir(parents=True, exist_ok=True)
        # Left over from an engine that died: dockerd refuses to start over them.
        for stale in (engine.socket, engine.pidfile):
            stale.unlink(missing_ok=True)
        driver = choose_storage_driver(executor, engine)
        executor.run([
            "start-stop-daemon", "--start", "--background", "--make-pidfile",
            "--pidfile", str(engine.launcher_pidfile), "--output", str(engine.logfile),
            "--exec", dockerd, "--",
            "--data-root", str(engine.data_root), "--exec-root", str(engine.exec_root),
            "--pidfile", str(engine.pidfile), "-H", engine.url,
            # No iptables or bridge: sandboxes forbid them, and builds and
            # containers use the host's network.
            f"--storage-driver={driver}", "--iptables=false", "--ip6tables=false", "--bridge=none",
        ], hint="see the engine log in " + str(engine.logfile))
        if executor.dry_run:
            return DockerApi.not_started(engine.url, executor)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            api = DockerApi.connect(engine.url, executor) if engine.socket.exists() else None
            if api:
                log.info("started a private Docker engine at %s", engine.url)
                return api
            time.sleep(0.5)
    tail = engine.logfile.read_text(errors="replace").strip().splitlines()[-1:] if engine.logfile.exists() else []
    raise EngineError(f"the private Docker engine did not answer within {wait_seconds:.0f} s"
                      + (f": {tail[0][:200]}" if tail else ""),
                      f"see {engine.logfile}")


def stop_private_engine(executor: Executor, cache_dir: Path) -> bool:
    """Stop elkbuild's own dockerd; False when it was not running."""
    engine = private_engine(cache_dir)
    if not engine.pidfile.exists():
        return False
    done = executor.run(["start-stop-daemon", "--stop", "--pidfile", str(engine.pidfile),
                         "--retry", "TERM/30/KILL/5", "--remove-pidfile"], check=False)
    engine.launcher_pidfile.unlink(missing_ok=True)
    # dockerd leaves its network namespace (exec/netns/default) bind-mounted when it
    # runs with --bridge=none; unmounted here so the engine's folder can be removed.
    for mount in reversed(mounts_under(engine.home)):
        executor.run(["umount", "--lazy", str(mount)], check=False)
    return done.returncode == 0


def mounts_under(folder: Path) -> list[Path]:
    """Mount points at or below `folder`, in the order /proc/self/mounts lists them."""
    inside = []
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 2:
            continue
        # Spaces and tabs in mount points are written as octal escapes.
        point = Path(fields[1].encode().decode("unicode_escape"))
        if point == folder or folder in point.parents:
            inside.append(point)
    return inside


def connect(cache_dir: Path, executor: Executor, *, start: bool = True) -> DockerApi:
    """A working engine: the user's, elkbuild's private one, or a new private one."""
    api = reachable_engine(cache_dir, executor)
    if api:
        return api
    if not start:
        raise EngineError("no Docker engine is reachable",
                          "start Docker, set DOCKER_HOST, or run `invoke docker-engine --start`")
    return start_private_engine(executor, cache_dir)


def engine_description(api: DockerApi) -> dict[str, str]:
    info = api.info()
    return {"url": api.url, "version": api.version().get("Version", "?"),
            "storage_driver": info.get("Driver", "?"), "data_root": info.get("DockerRootDir", "?")}


# ---- base image ------------------------------------------------------------------


def image_exists(api: DockerApi, tag: str) -> bool:
    return api.image(tag) is not None


def seed_suite(tag: str) -> str:
    """The Debian suite of a base image tag such as debian:bookworm-slim."""
    repository, _, version = tag.partition(":")
    if repository != "debian" or not version:
        raise EngineError(f"cannot seed base image {tag!r}: only debian:<suite>[-slim] images "
                          "are made from Debian packages",
                          f"docker load or pull {tag} yourself")
    return version.removesuffix("-slim")


def seed_base_image(api: DockerApi, executor: Executor, tag: str, cache_dir: Path, *,
                    mirror: str = DEBIAN_MIRROR, on_line: LineSink | None = None) -> str:
    """Make `tag` (debian:<suite>[-slim]) from Debian packages; returns the image id.

    mmdebstrap builds a minimal root filesystem as a tarball, which becomes the
    image with `docker import`. It needs nothing but Debian's archive.
    """
    suite = seed_suite(tag)
    if not executor.dry_run:
        require("mmdebstrap", "apt-get install mmdebstrap (it builds the base image "
                "from Debian packages)")
    work = Path(cache_dir).expanduser() / "base-images"
    work.mkdir(parents=True, exist_ok=True)
    tarball = work / f"{suite}-{os.getpid()}.tar"
    argv = ["mmdebstrap", "--variant=minbase", "--format=tar", "--quiet"]
    argv += [f"--dpkgopt=path-exclude={pattern}" for pattern in _DPKG_EXCLUDES]
    argv += [suite, str(tarball), mirror]
    try:
        executor.run(argv, on_line=on_line, hint="mmdebstrap needs Debian's archive "
                     f"({mirror}) to be reachable")
        if executor.dry_run:
            return ""
        repository, _, version = tag.partition(":")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        api.import_image(tarball, repository, version,
                         ['CMD ["/bin/bash"]', f"LABEL {SEED_LABEL}={suite}@{stamp}",
                          "ENV LANG=C.UTF-8"])
    finally:
        tarball.unlink(missing_ok=True)
    return api.require_image(tag).id
