"""Building a toolchain's Docker image, and reusing it while its inputs are unchanged.

The inputs (Dockerfile, build arguments, files of the build context, the base
image's id) are hashed; the hash is a label on the image. A later build with the
same hash is a no-op, so `invoke docker-image` is cheap when nothing changed.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from elkbuild.docker.api import DockerApi, DockerApiError
from elkbuild.docker.engine import DEBIAN_MIRROR, image_exists, seed_base_image
from elkbuild.digests import sha256_file
from elkbuild.errors import BuildError, ElkbuildError, UsageError
from elkbuild.locks import locked
from elkbuild.executor import Executor, LineSink
from elkbuild.build.toolchains import Toolchain

log = logging.getLogger("elkbuild.docker")

INPUTS_LABEL = "org.elkbuild.inputs"
TOOLCHAIN_LABEL = "org.elkbuild.toolchain"
SDK_INSTALLER_NAME = "elk-sdk-installer.sh"

ProgressSink = Callable[[int, int | None], None]  # (bytes done, bytes total)


@dataclass(frozen=True)
class BuildPlan:
    """Everything that goes into one image: the hash of it is the image's label."""

    toolchain: str
    tag: str
    dockerfile: Path
    base: str
    build_args: dict[str, str]
    # Files the build fetches from the host's loopback (name -> (file, sha256)),
    # instead of copying them into a layer; their URLs are added as build args.
    served_files: dict[str, tuple[Path, str]] = field(default_factory=dict)

    def inputs_hash(self, base_id: str) -> str:
        served = {name: sha for name, (_, sha) in self.served_files.items()}
        digest = hashlib.sha256()
        digest.update(self.dockerfile.read_bytes())
        digest.update(json.dumps({"args": self.build_args, "base": base_id, "tag": self.tag,
                                  "served": served}, sort_keys=True).encode())
        return digest.hexdigest()


@dataclass(frozen=True)
class ImageResult:
    toolchain: str
    tag: str
    image_id: str
    reused: bool
    seeded_base: bool
    seconds: float
    inputs: str

    def as_dict(self) -> dict[str, object]:
        return {"toolchain": self.toolchain, "tag": self.tag, "image_id": self.image_id,
                "reused": self.reused, "seeded_base": self.seeded_base,
                "seconds": round(self.seconds, 2), "inputs": self.inputs}


def base_image_of(dockerfile: Path) -> str:
    """The image named by the Dockerfile's first FROM line."""
    for line in dockerfile.read_text().splitlines():
        match = re.match(r"\s*FROM\s+(\S+)", line, re.IGNORECASE)
        if match:
            return match.group(1)
    raise BuildError(f"{dockerfile}: no FROM line", "every Dockerfile starts from a base image")


def plan_for(toolchain: Toolchain, cache_dir: Path, *, mirror: str = DEBIAN_MIRROR,
             on_progress: ProgressSink | None = None) -> BuildPlan:
    """What building `toolchain`'s image takes (fetching the SDK installer if needed)."""
    if toolchain.definition.get("image_of"):
        raise UsageError(f"toolchain {toolchain.name} has no image of its own: it runs in the "
                         f"{toolchain.definition['image_of']} image",
                         f"run `invoke docker-image --toolchain {toolchain.definition['image_of']}`")
    dockerfile = toolchain.dockerfile
    if not toolchain.image or dockerfile is None or not dockerfile.is_file():
        raise UsageError(f"toolchain {toolchain.name} has no Dockerfile")
    args: dict[str, str] = {"DEBIAN_MIRROR": mirror}
    served: dict[str, tuple[Path, str]] = {}
    if toolchain.kind == "debian-arm64":
        sysroot = toolchain.definition["sysroot"]
        # The cross compiler comes from the sysroot's suite and mirror, so its libc
        # is the sysroot's.
        args.update(SYSROOT=sysroot["path"], SYSROOT_SUITE=sysroot["suite"],
                    SYSROOT_MIRROR=sysroot.get("mirror") or mirror,
                    SYSROOT_PACKAGES=" ".join(sysroot["packages"]),
                    GCC_VERSION=str(toolchain.definition["gcc_version"]))
    if toolchain.sdk:
        installer, sha256 = sdk_installer(toolchain, cache_dir, on_progress=on_progress)
        args.update(SDK_DIR=toolchain.sdk.install_dir, SDK_INSTALLER_SHA256=sha256)
        served[SDK_INSTALLER_NAME] = (installer, sha256)
    return BuildPlan(toolchain=toolchain.name, tag=toolchain.image, dockerfile=dockerfile,
                     base=base_image_of(dockerfile), build_args=args, served_files=served)


# ---- the Elk SDK installer ------------------------------------------------------------


def _verify(path: Path, expected: str | None, source: str) -> str:
    actual = sha256_file(path)
    if expected and actual != expected.lower():
        raise BuildError(f"{source}: sha256 is {actual}, expected {expected}",
                         "the installer is not the one recorded; download it again or pass "
                         "the right --sdk-sha256")
    return actual


def sdk_installer(toolchain: Toolchain, cache_dir: Path, *,
                  on_progress: ProgressSink | None = None) -> tuple[Path, str]:
    """The SDK installer on disk and its sha256: the local one given, or a verified download.

    The real sha256 values are not published with the releases; when none is
    known the first download's hash is recorded next to it and checked from then
    on (trust on first use), and reported so the user can pin it.
    """
    sdk = toolchain.sdk
    assert sdk is not None
    if sdk.installer is not None:
        return sdk.installer, _verify(sdk.installer, sdk.installer_sha256, str(sdk.installer))
    downloads = Path(cache_dir) / "downloads"
    target = downloads / Path(sdk.installer_url).name
    recorded = target.with_name(target.name + ".sha256")
    if target.is_file():
        expected = sdk.installer_sha256 or (recorded.read_text().strip() if recorded.is_file() else None)
        return target, _verify(target, expected, str(target))
    downloads.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=downloads, prefix=".download-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            _download(sdk.installer_url, out, on_progress)
        actual = _verify(tmp, sdk.installer_sha256, sdk.installer_url)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if not sdk.installer_sha256:
        recorded.write_text(actual + "\n")
        log.warning("%s: no sha256 was known; recorded %s (pin it with --sdk-sha256)",
                    target.name, actual)
    return target, actual


def _download(url: str, out, on_progress: ProgressSink | None) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            done = 0
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                done += len(block)
                if on_progress:
                    on_progress(done, total)
    except (urllib.error.URLError, OSError) as error:
        raise BuildError(f"cannot download the Elk SDK installer {url}: {error}",
                         "download it elsewhere and pass --sdk-installer PATH") from None


# ---- building --------------------------------------------------------------------------


def _labelled_inputs(api: DockerApi, tag: str) -> tuple[str | None, str | None]:
    image = api.image(tag)
    if image is None:
        return None, None
    return image.id, image.labels.get(INPUTS_LABEL)


def ensure_image(api: DockerApi, toolchain: Toolchain, executor: Executor,
                 cache_dir: Path, *, force: bool = False, seed_base: bool = False,
                 mirror: str = DEBIAN_MIRROR, on_line: LineSink | None = None,
                 on_progress: ProgressSink | None = None) -> ImageResult:
    """Build the toolchain's image unless one with the same inputs exists.

    The base image is seeded from Debian packages when missing (or always, with
    `seed_base`). Builds use the host's network (the private engine has no bridge).
    """
    started = time.monotonic()
    plan = plan_for(toolchain, cache_dir, mirror=mirror, on_progress=on_progress)
    # Two elkbuild processes asking one engine for the same image: the second
    # waits, then reuses.
    lock_name = f"{api.engine_id()}-{plan.tag.replace('/', '_').replace(':', '_')}.lock"
    with locked(Path(cache_dir) / "docker-context" / lock_name):
        return _ensure_locked(api, toolchain, plan, executor, cache_dir, started,
                              force=force, seed_base=seed_base, mirror=mirror, on_line=on_line)


def _ensure_locked(api: DockerApi, toolchain: Toolchain, plan: BuildPlan,
                   executor: Executor, cache_dir: Path, started: float, *, force: bool,
                   seed_base: bool, mirror: str, on_line: LineSink | None) -> ImageResult:
    seeded = False
    with locked(Path(cache_dir) / "base-images" / f"{api.engine_id()}-seed.lock"):
        if seed_base or not image_exists(api, plan.base):
            if on_line:
                on_line(f"seeding base image {plan.base} from Debian packages")
            seed_base_image(api, executor, plan.base, cache_dir, mirror=mirror, on_line=on_line)
            seeded = True
    base = api.image(plan.base)
    if base is None and executor.dry_run:  # a dry run seeds nothing
        return ImageResult(toolchain.name, plan.tag, "", False, seeded,
                           time.monotonic() - started, "")
    inputs = plan.inputs_hash(api.require_image(plan.base).id)
    old_id, old_inputs = _labelled_inputs(api, plan.tag)
    if old_inputs == inputs and not force:
        return ImageResult(toolchain.name, plan.tag, old_id or "", True, seeded,
                           time.monotonic() - started, inputs)
    image_id = _build(api, plan, inputs, cache_dir, on_line)
    if old_id and image_id and old_id != image_id:
        api.remove_image(old_id)  # on vfs an old image is gigabytes
    return ImageResult(toolchain.name, plan.tag, image_id, False, seeded,
                       time.monotonic() - started, inputs)


def _build(api: DockerApi, plan: BuildPlan, inputs: str, cache_dir: Path,
           on_line: LineSink | None) -> str:
    contexts = Path(cache_dir) / "docker-context"
    contexts.mkdir(parents=True, exist_ok=True)
    context = Path(tempfile.mkdtemp(dir=contexts, prefix=f"{plan.toolchain}-"))
    server = _serve({name: path for name, (path, _) in plan.served_files.items()})
    try:
        shutil.copyfile(plan.dockerfile, context / "Dockerfile")
        build_args = dict(plan.build_args)
        port = server.server_address[1]
        build_args.update({_url_arg(name): f"http://127.0.0.1:{port}/{name}"
                           for name in plan.served_files})
        labels = {INPUTS_LABEL: inputs, TOOLCHAIN_LABEL: plan.toolchain}
        last: list[str] = []
        for chunk in api.build(context, plan.tag, buildargs=build_args, labels=labels):
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise BuildError(f"building image {plan.tag} failed: {' '.join(detail.split())[:300]}",
                                 "run again with --verbose to see the whole build log")
            text = chunk.get("stream") or chunk.get("status") or ""
            for line in text.splitlines():
                if line.strip():
                    last = (last + [line])[-20:]
                    if on_line:
                        on_line(line)
                    else:
                        log.debug("%s", line)
    except DockerApiError as error:
        raise BuildError(f"building image {plan.tag} failed: {error}") from None
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(context, ignore_errors=True)
    if api.host.dry_run:
        return ""
    image = api.require_image(plan.tag)
    if image.labels.get(INPUTS_LABEL) != inputs:
        raise BuildError(f"building image {plan.tag} produced no labelled image",
                         "; ".join(last[-3:]) or None)
    return image.id


def _url_arg(name: str) -> str:
    """elk-sdk-installer.sh -> SDK_INSTALLER_URL (the Dockerfile's ARG)."""
    return {SDK_INSTALLER_NAME: "SDK_INSTALLER_URL"}.get(name, re.sub(r"\W", "_", name).upper() + "_URL")


def _serve(files: dict[str, Path]) -> http.server.ThreadingHTTPServer:
    """Serve exactly `files` on 127.0.0.1 (a free port) while an image builds."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            path = files.get(self.path.lstrip("/"))
            if path is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(path.stat().st_size))
            self.end_headers()
            with open(path, "rb") as handle:
                shutil.copyfileobj(handle, self.wfile, 1 << 20)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("installer server: " + format, *args)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def image_status(api: DockerApi, toolchain: Toolchain) -> dict[str, object]:
    """What is known about a toolchain's image without building anything."""
    image_id, inputs = _labelled_inputs(api, toolchain.image or "")
    return {"toolchain": toolchain.name, "tag": toolchain.image, "present": image_id is not None,
            "image_id": image_id, "inputs": inputs}


class ImageMissing(ElkbuildError):
    """A toolchain's image has not been built yet."""
