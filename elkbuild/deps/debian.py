"""Debian packages as dependency sources, through a private apt configuration.

The system's apt sources are never edited: each (suite, architecture) gets its
own apt root under the cache (sources.list, state, package lists), and every
apt-get/apt-cache call points at it with `-c`. apt verifies the archive's
signed index itself; elkbuild then checks each .deb against the SHA256 that
index gives before it enters the source cache.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from elkbuild.errors import BuildError
from elkbuild.executor import Executor

DEFAULT_MIRROR = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


@dataclass(frozen=True)
class DebPin:
    """What apt's index says about one binary package at the time it was resolved."""

    package: str
    version: str
    arch: str
    filename: str          # pool path, e.g. pool/main/o/onnxruntime/libonnxruntime-dev_..._arm64.deb
    sha256: str
    depends: str = ""

    @property
    def file_name(self) -> str:
        return Path(self.filename).name

    def as_entry(self) -> dict[str, str]:
        return {"version": self.version, "arch": self.arch, "filename": self.filename,
                "sha256": self.sha256, "depends": self.depends}

    @classmethod
    def from_entry(cls, package: str, entry: dict) -> "DebPin":
        return cls(package=package, version=str(entry["version"]), arch=str(entry["arch"]),
                   filename=str(entry["filename"]), sha256=str(entry["sha256"]),
                   depends=str(entry.get("depends", "")))


def pin_key(suite: str, arch: str, package: str) -> str:
    return f"{suite}/{arch}/{package}"


class AptRoot:
    """A private apt root for one suite and architecture."""

    def __init__(self, cache_dir: Path, suite: str, arch: str, mirror: str = DEFAULT_MIRROR,
                 *, sources: bool = False) -> None:
        self.suite = suite
        self.arch = arch
        self.mirror = mirror
        # Source indexes are large; only roots that fetch source packages list them.
        self.sources = sources
        self.root = cache_dir / "apt" / (f"{suite}-source" if sources else f"{suite}-{arch}")
        self.conf = self.root / "apt.conf"

    def prepare(self) -> None:
        for sub in ("state/lists/partial", "cache/archives/partial", "etc/sources.list.d",
                    "etc/preferences.d", "etc/apt.conf.d"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "state" / "status").touch()
        signed = f"signed-by={KEYRING}"
        kind = f"deb-src [{signed}]" if self.sources else f"deb [arch={self.arch} {signed}]"
        (self.root / "etc" / "sources.list").write_text(f"{kind} {self.mirror} {self.suite} main\n")
        r = self.root
        self.conf.write_text("\n".join([
            f'Dir::State "{r}/state";',
            f'Dir::State::status "{r}/state/status";',
            f'Dir::Cache "{r}/cache";',
            f'Dir::Etc::sourcelist "{r}/etc/sources.list";',
            f'Dir::Etc::sourceparts "{r}/etc/sources.list.d";',
            f'Dir::Etc::preferencesparts "{r}/etc/preferences.d";',
            f'APT::Architecture "{self.arch}";',
            f'APT::Architectures "{self.arch}";',
            'Acquire::Languages "none";',
            # apt drops to the _apt user for downloads; the cache may not be readable to it.
            'APT::Sandbox::User "root";',
            "",
        ]))

    @property
    def has_lists(self) -> bool:
        lists = self.root / "state" / "lists"
        return lists.is_dir() and any(lists.glob("*_Sources*" if self.sources else "*_Packages*"))

    def update(self, executor: Executor) -> None:
        self.prepare()
        executor.run(["apt-get", "-c", str(self.conf), "-q", "update"],
                     hint=f"check that {self.mirror} is reachable (or build with --offline)")

    def resolve(self, executor: Executor, package: str) -> DebPin:
        """Version, pool file name and SHA256 of the candidate from the index."""
        spec = f"{package}:{self.arch}"
        shown = executor.run(["apt-cache", "-c", str(self.conf), "show", "--no-all-versions", spec],
                             check=False)
        if shown.returncode != 0 or not shown.stdout.strip():
            raise BuildError(f"Debian package {package!r} ({self.arch}) is not in {self.suite}",
                             f"check the package name with `apt-cache search`; the index is "
                             f"{self.root / 'state' / 'lists'}")
        fields = parse_control(shown.stdout)
        try:
            return DebPin(package=package, version=fields["Version"], arch=fields["Architecture"],
                          filename=fields["Filename"], sha256=fields["SHA256"],
                          depends=fields.get("Depends", ""))
        except KeyError as missing:
            raise BuildError(f"apt's index for {package} in {self.suite} has no {missing} field",
                             "run `invoke fetch-sources --update` to refresh the index") from None

    def download(self, executor: Executor, pin: DebPin, into: Path) -> Path:
        """apt-get download of exactly the pinned version into `into`."""
        into.mkdir(parents=True, exist_ok=True)
        executor.run(["apt-get", "-c", str(self.conf), "-q", "download",
                      f"{pin.package}:{pin.arch}={pin.version}"], cwd=str(into),
                     hint=f"the pinned version {pin.version} may have left {self.suite}; "
                          f"run `invoke fetch-sources --update` to pin the current one")
        # apt-get names the file with the epoch colon escaped as %3a.
        matches = sorted(into.glob(f"{pin.package}_*_{pin.arch}.deb"))
        if not matches:
            raise BuildError(f"apt-get download left no .deb for {pin.package} in {into}")
        return matches[0]

    def resolve_source(self, executor: Executor, package: str) -> DebSrcPin:
        """Version, pool folder and SHA256 of each file of a source package, from the index."""
        shown = executor.run(["apt-cache", "-c", str(self.conf), "showsrc", "--only-source", package],
                             check=False)
        if shown.returncode != 0 or not shown.stdout.strip():
            raise BuildError(f"Debian source package {package!r} is not in {self.suite}",
                             "check the name with `apt-cache showsrc`")
        fields = parse_control(shown.stdout)
        files = {}
        for line in fields.get("Checksums-Sha256", "").splitlines():
            parts = line.split()
            if len(parts) == 3:
                files[parts[2]] = parts[0]
        if not files or "Directory" not in fields:
            raise BuildError(f"apt's source index for {package} in {self.suite} lists no files",
                             "run `invoke fetch-sources --update` to refresh the index")
        return DebSrcPin(package=package, version=fields["Version"], directory=fields["Directory"],
                         format=fields.get("Format", ""), files=files)


@dataclass(frozen=True)
class DebSrcPin:
    """A Debian source package as its signed index describes it."""

    package: str
    version: str
    directory: str                     # e.g. pool/main/t/tensorflow
    format: str                        # "3.0 (quilt)"
    files: dict[str, str]              # file name -> sha256

    def tarballs(self) -> dict[str, str]:
        return {name: sha for name, sha in self.files.items() if ".tar." in name}

    def as_entry(self) -> dict:
        return {"version": self.version, "directory": self.directory, "format": self.format,
                "files": dict(self.files)}

    @classmethod
    def from_entry(cls, package: str, entry: dict) -> "DebSrcPin":
        return cls(package=package, version=str(entry["version"]), directory=str(entry["directory"]),
                   format=str(entry.get("format", "")), files=dict(entry["files"]))


def parse_control(text: str) -> dict[str, str]:
    """The first stanza of Debian control-format text (folded lines joined)."""
    fields: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t" and last:
            fields[last] += "\n" + line.strip()
            continue
        match = re.match(r"^([A-Za-z0-9-]+):\s?(.*)$", line)
        if match:
            last = match.group(1)
            fields[last] = match.group(2).strip()
    return fields


def mmdebstrap_argv(recipe: Mapping[str, Any], target: Path,
                    mirror: str | None = None) -> list[str]:
    """mmdebstrap making a userland in `target` from a recipe: suite, architecture,
    variant, packages, dpkg_excludes (paths not unpacked) and, optionally,
    apt_options; from `mirror` (mmdebstrap's default, deb.debian.org, if None)."""
    argv = ["mmdebstrap", "--mode=root", f"--variant={recipe['variant']}",
            f"--architectures={recipe['architecture']}",
            f"--include={','.join(recipe['packages'])}"]
    argv += [f"--dpkgopt=path-exclude={pattern}" for pattern in recipe["dpkg_excludes"]]
    argv += [f"--aptopt={option}" for option in recipe.get("apt_options", ())]
    return argv + [recipe["suite"], str(target), *([mirror] if mirror else [])]
