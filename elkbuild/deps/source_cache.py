"""The source cache: every downloaded input, verified, under $ELKBUILD_CACHE/sources.

Downloads go to a temporary file beside their destination, are hashed while
they stream, verified, and only then renamed into place, all under a per-file
lock: an interrupted or concurrent fetch never leaves a half file that a later
build would trust. `offline=True` never opens a connection; what is missing is
collected and reported with where to put it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager

from elkbuild.digests import sha256_file
from elkbuild.errors import BuildError, ElkbuildError, ValidationFailed
from elkbuild.executor import Executor
from elkbuild.locks import locked
from elkbuild.deps.archives import extract
from elkbuild.deps.debian import DEFAULT_MIRROR, AptRoot, DebPin, DebSrcPin, pin_key
from elkbuild.deps.patching import apply_patches
from elkbuild.deps.lockfile import PinFile, now
from elkbuild.deps.recipes import UNKNOWN_SHA256, Recipe, Source

log = logging.getLogger("elkbuild.deps")

Progress = Callable[[str, int, int], None]
"""(label, bytes done, bytes total or 0) during a download."""


class UnpinnedSource(ElkbuildError):
    """A download has no verified sha256 in the recipe or the lock file."""


class ChecksumMismatch(ElkbuildError):
    """A downloaded or dropped-in file is not the one that was pinned."""


class MissingSources(ValidationFailed):
    """--offline and some inputs are not in the cache: one line per input, with how to get it."""

    def __init__(self, missing: list["Missing"]) -> None:
        self.missing = missing
        super().__init__(
            "offline build: sources missing from the cache",
            [f"{m.what} -> {m.how}" for m in missing],
            "run `invoke fetch-sources --toolchain <T>` where the network is reachable and copy "
            "the cache's sources/ folder here, or place each file as listed")


@dataclass(frozen=True)
class Missing:
    what: str
    how: str


@dataclass
class FetchReport:
    fetched: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    pinned_now: list[str] = field(default_factory=list)


def wheel_key(source: Source) -> str:
    return f"{source.package}/{source.platform}/py{source.python}"


def url_basename(url: str) -> str:
    name = Path(urllib.parse.urlparse(url).path).name
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name) or "download"


def file_lock(target: Path) -> ContextManager[None]:
    """The lock that guards writing `target`: .<name>.lock beside it."""
    return locked(target.parent / f".{target.name}.lock")


class SourceCache:
    def __init__(self, cache_dir: Path, pins: PinFile, *, offline: bool = False,
                 allow_unpinned: bool = False, update_debs: bool = False,
                 progress: Progress | None = None, mirror: str | None = None) -> None:
        self.root = cache_dir / "sources"
        self.cache_dir = cache_dir
        self.pins = pins
        self.offline = offline
        self.allow_unpinned = allow_unpinned
        self.update_debs = update_debs
        self.progress = progress
        self.mirror = mirror
        self._updated_suites: set[tuple[str, str, str]] = set()

    # ---- where things live ------------------------------------------------

    @property
    def incoming(self) -> Path:
        """Drop-in folder for files carried onto an offline machine by hand."""
        return self.root / "incoming"

    def url_path(self, sha256: str, url: str) -> Path:
        return self.root / "by-sha256" / sha256 / url_basename(url)

    def deb_path(self, pin: DebPin) -> Path:
        return self.root / "debs" / pin.sha256[:2] / pin.file_name

    def git_path(self, source: Source) -> Path:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{source.url}@{source.tag}").strip("_")
        return self.root / "git" / f"{slug}.tar"

    def wheel_dir(self, sha256: str) -> Path:
        return self.root / "wheels" / sha256

    def debsrc_dir(self, source: Source) -> Path:
        return self.root / "deb-src" / source.suite / source.package

    # ---- what a source is pinned to (no network, no hashing of big files) -

    def expected_sha256(self, source: Source) -> str | None:
        if source.kind == "url":
            if source.sha256 != UNKNOWN_SHA256:
                return source.sha256
            return self.pins.url_sha256(source.url)
        if source.kind == "git":
            entry = self.pins.get("git", f"{source.url}@{source.tag}")
            return str(entry["sha256"]) if entry else None
        if source.kind == "deb":
            if source.sha256 != UNKNOWN_SHA256:
                return source.sha256
            entry = self.pins.get("debs", pin_key(source.suite, source.arch, source.package))
            return str(entry["sha256"]) if entry else None
        if source.kind == "wheel":
            if source.sha256 != UNKNOWN_SHA256:
                return source.sha256
            entry = self.pins.get("wheels", wheel_key(source))
            return str(entry["sha256"]) if entry else None
        if source.kind == "deb-src":
            pin = self.debsrc_pin(source)
            if pin is None:
                return None
            return hashlib.sha256(json.dumps(pin.files, sort_keys=True).encode()).hexdigest()
        return None

    def deb_pin(self, source: Source) -> DebPin | None:
        entry = self.pins.get("debs", pin_key(source.suite, source.arch, source.package))
        return DebPin.from_entry(source.package, entry) if entry else None

    # ---- fetching ---------------------------------------------------------

    def missing(self, recipe: Recipe, extra: list[Source] | None = None) -> list[Missing]:
        """What an offline build of `recipe` would lack, without touching the network."""
        gaps = []
        for source in [*recipe.sources, *(extra or [])]:
            gap = self.gap(recipe, source)
            if gap:
                gaps.append(gap)
        return gaps

    def gap(self, recipe: Recipe, source: Source) -> Missing | None:
        label = f"{recipe.key}: {source.id}"
        if source.kind == "path":
            path = (recipe.file.parent / source.path).resolve()
            return None if path.exists() else Missing(f"{label} (local path {path})", "create it")
        sha = self.expected_sha256(source)
        if source.kind == "url":
            if sha is None:
                if self.allow_unpinned and (self.incoming / url_basename(source.url)).is_file():
                    return None  # adopted and pinned from incoming/ by fetch()
                return self._gap_unpinned(label, source)
            if self.url_path(sha, source.url).is_file() or self._from_incoming(source.url, sha):
                return None
            return Missing(f"{label} {source.url}",
                           f"download it elsewhere and put it at {self.incoming / url_basename(source.url)} "
                           f"(sha256 {sha})")
        if source.kind == "git":
            if sha and self.git_path(source).is_file():
                return None
            return Missing(f"{label} git {source.url} tag {source.tag}",
                           f"run `invoke fetch-sources` online (makes {self.git_path(source)})")
        if source.kind == "deb":
            pin = self.deb_pin(source)
            if pin is None:
                return Missing(f"{label} Debian {source.package} ({source.suite}, {source.arch}) not resolved yet",
                               "run `invoke fetch-sources` once with access to Debian's archive")
            if self.deb_path(pin).is_file() or self._from_incoming_name(pin.file_name, pin.sha256, self.deb_path(pin)):
                return None
            return Missing(f"{label} {pin.file_name}",
                           f"`apt-get download {pin.package}:{pin.arch}={pin.version}` and put it in {self.incoming}")
        if source.kind == "wheel":
            if sha and (self.cached_wheel(sha) is not None or self._wheel_from_incoming(sha)):
                return None
            return Missing(f"{label} wheel {source.package} ({source.platform})",
                           "run `invoke fetch-sources` once with access to PyPI, or `pip download "
                           f"--no-deps --only-binary=:all: --platform {source.platform} "
                           f"--python-version {source.python} {source.package}` and put the .whl in "
                           f"{self.incoming}")
        if source.kind == "deb-src":
            pin = self.debsrc_pin(source)
            if pin is None:
                return Missing(f"{label} Debian source {source.package} ({source.suite}) not resolved yet",
                               "run `invoke fetch-sources --from-source` once with access to Debian's archive")
            if (self.debsrc_dir(source) / pin.version).is_dir() or all(
                    self.url_path(sha, name).is_file() or (self.incoming / name).is_file()
                    for name, sha in pin.tarballs().items()):
                return None
            return Missing(f"{label} Debian source {source.package} {pin.version}",
                           "`apt-get source --download-only` it and put the tarballs in " + str(self.incoming))
        return None

    def _gap_unpinned(self, label: str, source: Source) -> Missing:
        return Missing(f"{label} {source.url} (sha256 not pinned yet)",
                       "fetch it once online with `invoke fetch-sources --allow-unpinned`, or put the "
                       f"file at {self.incoming / url_basename(source.url)} and build with "
                       "--offline --allow-unpinned; check the digest written to the lock file against upstream")

    def fetch(self, recipe: Recipe, source: Source, executor: Executor,
              report: FetchReport | None = None) -> Path:
        """The cached, verified file or tree for `source`; fetch it if allowed."""
        report = report or FetchReport()
        label = f"{recipe.key}: {source.id}"
        if source.kind == "path":
            path = (recipe.file.parent / source.path).resolve()
            if not path.exists():
                raise BuildError(f"{recipe.file}: sources.{source.id}.path {source.path!r} does not exist",
                                 f"create {path} or fix the path (relative to the recipe file)")
            return path
        if self.offline:
            gap = self.gap(recipe, source)
            if gap:
                raise MissingSources([gap])
        if source.kind == "url":
            return self._fetch_url(label, source, report)
        if source.kind == "git":
            return self._fetch_git(label, source, executor, report)
        if source.kind == "deb":
            return self._fetch_deb(label, source, executor, report)
        if source.kind == "wheel":
            return self._fetch_wheel(label, source, executor, report)
        return self._fetch_debsrc(label, source, executor, report)

    def _fetch_url(self, label: str, source: Source, report: FetchReport) -> Path:
        sha = self.expected_sha256(source)
        if sha is None and not self.allow_unpinned:
            raise UnpinnedSource(
                f"{label}: {source.url} has no verified sha256 (recipe says '{UNKNOWN_SHA256}' and "
                f"{self.pins.path.name} has no pin)",
                "run `invoke fetch-sources --allow-unpinned` to download it once and pin its digest "
                f"in {self.pins.path}; compare that digest with the one upstream publishes")
        if sha is not None:
            target = self.url_path(sha, source.url)
            if target.is_file() or self._from_incoming(source.url, sha):
                report.cached.append(label)
                return target
            with file_lock(target):
                if not target.is_file():
                    self._download(label, source.url, target, sha)
                    report.fetched.append(label)
            return target
        # Pin on first use: download (or adopt a hand-carried file), hash, record,
        # then file it under its digest.
        staging = self.root / "unpinned" / url_basename(source.url)
        dropped = self.incoming / url_basename(source.url)
        with file_lock(staging):
            if dropped.is_file():
                digest = sha256_file(dropped)
                staging.parent.mkdir(parents=True, exist_ok=True)
                os.replace(dropped, staging)
            elif self.offline:
                raise MissingSources([self._gap_unpinned(label, source)])
            else:
                digest = self._download(label, source.url, staging, None)
            target = self.url_path(digest, source.url)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, target)
        self.pins.put("urls", source.url, {"sha256": digest, "pinned": now(),
                                           "how": "first download (--allow-unpinned); verify against upstream"})
        log.warning("pinned %s sha256=%s on first download: check it against upstream", source.url, digest)
        report.fetched.append(label)
        report.pinned_now.append(f"{source.url} sha256={digest}")
        return target

    def _from_incoming(self, url: str, sha: str) -> bool:
        return self._from_incoming_name(url_basename(url), sha, self.url_path(sha, url))

    def _from_incoming_name(self, name: str, sha: str, target: Path) -> bool:
        """Adopt a hand-carried file from incoming/ if (and only if) its digest matches."""
        dropped = self.incoming / name
        if not dropped.is_file():
            return False
        found = sha256_file(dropped)
        if found != sha:
            raise ChecksumMismatch(f"{dropped}: sha256 is {found}, expected {sha}",
                                   "that file is not the pinned one; fetch the right file or remove it")
        with file_lock(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(dropped, target)
        return True

    def _download(self, label: str, url: str, target: Path, sha: str | None) -> str:
        """Stream `url` into a temp file beside `target`, verify, rename. Returns the digest."""
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        tmp = Path(tmp_name)
        digest = hashlib.sha256()
        try:
            try:
                response = urllib.request.urlopen(url, timeout=60)  # noqa: S310 - recipe URLs, verified below
            except (urllib.error.URLError, OSError, ValueError) as error:
                raise BuildError(f"{label}: cannot download {url}: {getattr(error, 'reason', error)}",
                                 f"check the network, or download it elsewhere and put it in {self.incoming}") from None
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            with os.fdopen(fd, "wb") as out, response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    if self.progress:
                        self.progress(label, done, total)
            found = digest.hexdigest()
            if sha is not None and found != sha:
                raise ChecksumMismatch(f"{label}: {url} has sha256 {found}, expected {sha}",
                                       "the upstream file changed or the download was corrupted; "
                                       "nothing was stored")
            os.replace(tmp, target)
            return found
        finally:
            if tmp.exists():
                tmp.unlink()

    def cached_wheel(self, sha256: str) -> Path | None:
        found = sorted(self.wheel_dir(sha256).glob("*.whl")) if self.wheel_dir(sha256).is_dir() else []
        return found[0] if found else None

    def _wheel_from_incoming(self, sha256: str) -> Path | None:
        """Adopt a hand-carried .whl from incoming/ whose digest is `sha256` (its name
        is the wheel's own, which pip would have chosen)."""
        dropped = sorted(self.incoming.glob("*.whl")) if self.incoming.is_dir() else []
        for wheel in dropped:
            if sha256_file(wheel) == sha256:
                target = self.wheel_dir(sha256) / wheel.name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(wheel, target)
                return target
        return None

    def _fetch_wheel(self, label: str, source: Source, executor: Executor, report: FetchReport) -> Path:
        """A binary wheel from PyPI through pip (the registry's own client), for its
        prebuilt native library. Pinned by digest at first download, like a .deb."""
        sha = self.expected_sha256(source)
        if sha is not None:
            cached = self.cached_wheel(sha) or self._wheel_from_incoming(sha)
            if cached is not None:
                report.cached.append(label)
                return cached
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.root, prefix=".wheel-") as tmp:
            executor.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                          "--disable-pip-version-check", "--only-binary=:all:",
                          "--platform", source.platform, "--python-version", source.python,
                          "--dest", tmp, source.package],
                         hint=f"{label}: pip needs access to PyPI (or put the .whl in {self.incoming})")
            wheels = sorted(Path(tmp).glob("*.whl"))
            if len(wheels) != 1:
                raise BuildError(f"{label}: pip download of {source.package} gave {len(wheels)} wheels",
                                 "name one exact version and one platform in the recipe")
            digest = sha256_file(wheels[0])
            if sha is not None and digest != sha:
                raise ChecksumMismatch(f"{label}: {wheels[0].name} has sha256 {digest}, expected {sha}",
                                       "the registry served another file; nothing was stored")
            target = self.wheel_dir(digest) / wheels[0].name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(wheels[0], target)
        if sha is None:
            self.pins.put("wheels", wheel_key(source), {"sha256": digest, "file": target.name,
                                                        "pinned": now(), "how": "first pip download"})
            report.pinned_now.append(f"{source.package} ({source.platform}) sha256={digest}")
        report.fetched.append(label)
        return target

    def _apt(self, source: Source, executor: Executor, arch: str) -> AptRoot:
        apt = AptRoot(self.cache_dir, source.suite, arch, **({"mirror": self.mirror} if self.mirror else {}),
                      sources=source.kind == "deb-src")
        key = (source.suite, arch, source.kind)
        if key not in self._updated_suites:
            if self.update_debs or not apt.has_lists:
                apt.update(executor)
            else:
                apt.prepare()
            self._updated_suites.add(key)
        return apt

    def _fetch_deb(self, label: str, source: Source, executor: Executor, report: FetchReport) -> Path:
        pin = None if self.update_debs else self.deb_pin(source)
        if pin is None:
            apt = self._apt(source, executor, source.arch)
            pin = apt.resolve(executor, source.package)
            self.pins.put("debs", pin_key(source.suite, source.arch, source.package),
                          {**pin.as_entry(), "pinned": now()})
            report.pinned_now.append(f"{source.package} {pin.version} ({source.suite} {source.arch})")
        if source.sha256 != UNKNOWN_SHA256 and pin.sha256 != source.sha256:
            # The recipe names one exact file; a suite that moved on no longer serves it.
            raise ChecksumMismatch(
                f"{label}: {source.suite}'s {source.package} is {pin.version} (sha256 {pin.sha256}), "
                f"the recipe pins sha256 {source.sha256}",
                f"put the pinned .deb in {self.incoming} and pin it in {self.pins.path.name}, or "
                "change the recipe's sha256 to the new file")
        target = self.deb_path(pin)
        if target.is_file() or self._from_incoming_name(pin.file_name, pin.sha256, target):
            report.cached.append(label)
            return target
        apt = self._apt(source, executor, source.arch)
        with file_lock(target), tempfile.TemporaryDirectory(dir=self.root, prefix=".deb-") as tmp:
            got = apt.download(executor, pin, Path(tmp))
            found = sha256_file(got)
            if found != pin.sha256:
                raise ChecksumMismatch(f"{label}: {got.name} has sha256 {found}, apt's index says {pin.sha256}",
                                       "nothing was stored; run `invoke fetch-sources --update`")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(got, target)
        report.fetched.append(label)
        return target

    def _fetch_git(self, label: str, source: Source, executor: Executor, report: FetchReport) -> Path:
        target = self.git_path(source)
        key = f"{source.url}@{source.tag}"
        entry = self.pins.get("git", key)
        if target.is_file() and entry:
            found = sha256_file(target)
            if found != entry["sha256"]:
                raise ChecksumMismatch(f"{label}: {target} has sha256 {found}, pinned {entry['sha256']}",
                                       f"delete {target} and fetch again")
            report.cached.append(label)
            return target
        with file_lock(target), tempfile.TemporaryDirectory(dir=self.root, prefix=".git-") as tmp:
            clone = Path(tmp) / "clone"
            executor.run(["git", "clone", "--quiet", "--depth", "1", "--branch", source.tag,
                          source.url, str(clone)], hint="check the URL, the tag and the network")
            commit = executor.run(["git", "-C", str(clone), "rev-parse", "HEAD"]).stdout.strip()
            if entry and entry.get("commit") and entry["commit"] != commit:
                raise ChecksumMismatch(f"{label}: tag {source.tag} of {source.url} now points at {commit}, "
                                       f"pinned {entry['commit']}",
                                       "a moved tag is a changed input; remove the pin to accept it")
            archive = Path(tmp) / "src.tar"
            # git archive output is reproducible for a commit, so its digest is a fair pin.
            executor.run(["git", "-C", str(clone), "archive", "--format=tar", "--prefix=src/",
                          "-o", str(archive), "HEAD"])
            digest = sha256_file(archive)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(archive, target)
        self.pins.put("git", key, {"commit": commit, "sha256": digest, "pinned": now()})
        report.fetched.append(label)
        return target

    def debsrc_pin(self, source: Source) -> DebSrcPin | None:
        entry = self.pins.get("deb-src", f"{source.suite}/{source.package}")
        return DebSrcPin.from_entry(source.package, entry) if entry and "files" in entry else None

    def _fetch_debsrc(self, label: str, source: Source, executor: Executor, report: FetchReport) -> Path:
        """The unpacked source package, Debian's patches applied (format 3.0 quilt).

        Only the tarballs are fetched, each verified against the SHA256 of the
        signed Sources index; unpacking and the quilt series are done here, so
        neither dpkg-source nor the .dsc is needed.
        """
        pin = None if self.update_debs else self.debsrc_pin(source)
        if pin is None:
            apt = self._apt(source, executor, "source")
            pin = apt.resolve_source(executor, source.package)
            self.pins.put("deb-src", f"{source.suite}/{source.package}", {**pin.as_entry(), "pinned": now()})
            report.pinned_now.append(f"{source.package} {pin.version} ({source.suite} source)")
        tree = self.debsrc_dir(source) / pin.version
        if tree.is_dir():
            report.cached.append(label)
            return tree
        mirror = self.mirror or DEFAULT_MIRROR
        tarballs = {}
        for name, sha in pin.tarballs().items():
            target = self.url_path(sha, name)
            if not (target.is_file() or self._from_incoming_name(name, sha, target)):
                with file_lock(target):
                    if not target.is_file():
                        self._download(f"{label} {name}", f"{mirror}/{pin.directory}/{name}", target, sha)
            tarballs[name] = target
        with file_lock(tree), tempfile.TemporaryDirectory(dir=self.root, prefix=".debsrc-") as tmp:
            work = Path(tmp) / "tree"
            for name, path in sorted(tarballs.items(), key=lambda item: ".debian." in item[0]):
                if ".orig." in name:
                    extract(path, work, strip_components=1)
                elif ".debian." in name:
                    extract(path, work, strip_components=0)
                else:  # native package: one tarball with the whole tree
                    extract(path, work, strip_components=1)
            series = work / "debian" / "patches" / "series"
            if series.is_file():
                names = [line.split()[0] for line in series.read_text().splitlines()
                         if line.strip() and not line.lstrip().startswith("#")]
                apply_patches(work, [work / "debian" / "patches" / n for n in names])
            tree.parent.mkdir(parents=True, exist_ok=True)
            os.replace(work, tree)
        report.fetched.append(label)
        return tree
