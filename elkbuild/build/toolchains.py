"""Toolchains: the Elk-PI SDK, Debian's arm64 cross compiler, and the native host.

A toolchain is data (toolchain/*.yaml) plus a CMake toolchain file template
(toolchain/cmake/*.j2). Each `kind` of definition has its own class (TOOLCHAIN_KINDS
is the explicit registry): it knows its image, the ABI its sysroot produces, the
CMake arguments and environment a build needs, and which executor runs its
commands (a container by default).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import jinja2
import yaml

from elkbuild.config import DEFAULTS
from elkbuild.elf import read_elf
from elkbuild.errors import MISSING, ConfigError, ToolMissing, UsageError
from elkbuild.executor import Completed, Executor, LineSink, LocalExecutor, require

log = logging.getLogger("elkbuild.toolchains")

SOURCE_ROOT = Path(__file__).resolve().parents[2]
TOOLCHAIN_DIR = SOURCE_ROOT / "toolchain"
DOCKER_DIR = SOURCE_ROOT / "docker"

# A constant shell program, never formatted: the SDK's environment script must be
# sourced with LD_LIBRARY_PATH unset (its own loader paths break otherwise), then
# the real command runs with that environment. Arguments arrive positionally.
_SOURCE_THEN_EXEC = 'unset LD_LIBRARY_PATH; . "$1" >/dev/null || exit 97; shift; exec "$@"'


@dataclass(frozen=True)
class Abi:
    """What a binary built by a toolchain may require of the board."""

    glibc: str  # e.g. "2.36" (highest GLIBC_x.y version of the sysroot's libc)
    glibcxx: str  # e.g. "3.4.30" (highest GLIBCXX_x.y.z of its libstdc++)


def _highest_defined(library: Path, family: str) -> str | None:
    info = read_elf(library)
    return info.highest_defined(family) if info else None


def read_abi(libc: Path, libstdcxx: Path) -> Abi:
    """The ABI a sysroot provides, read from its libc.so.6 and libstdc++.so.6."""
    glibc = _highest_defined(libc, "GLIBC")
    glibcxx = _highest_defined(libstdcxx, "GLIBCXX")
    if not glibc or not glibcxx:
        raise ConfigError(libc if not glibc else libstdcxx, "", MISSING,
                          "defines no GLIBC_/GLIBCXX_ symbol versions: not a sysroot library")
    return Abi(glibc=glibc, glibcxx=glibcxx)


@dataclass(frozen=True)
class SdkRelease:
    """Where an Elk-PI SDK release comes from and where it is installed."""

    version: str
    installer_url: str
    installer_sha256: str | None  # None: not known; verified on first download
    install_dir: str
    environment_script: str
    target_sysroot: str
    native_sysroot: str
    os_version: str
    installer: Path | None = None  # a local installer (--sdk-installer) instead of the URL

    @property
    def environment_path(self) -> str:
        return f"{self.install_dir}/{self.environment_script}"

    @property
    def target_sysroot_path(self) -> str:
        return f"{self.install_dir}/sysroots/{self.target_sysroot}"

    @property
    def native_sysroot_path(self) -> str:
        return f"{self.install_dir}/sysroots/{self.native_sysroot}"


@dataclass(frozen=True)
class Toolchain:
    """What every kind of toolchain has; the kinds below add what differs."""

    kind: ClassVar[str]

    name: str
    image: str | None
    arch: str
    abi: Abi
    definition: Mapping[str, Any] = field(repr=False, compare=False)
    sdk: SdkRelease | None = None
    cache_dir: Path | None = field(default=None, compare=False)

    # ---- facts -----------------------------------------------------------------

    @property
    def cpu_flags(self) -> list[str]:
        return list(self.definition.get("cpu_flags", []))

    @property
    def sysroot(self) -> str | None:
        """The target sysroot inside the image (and on the host with --local)."""
        sysroot = self.definition.get("sysroot")
        return sysroot["path"] if sysroot else None

    @property
    def dockerfile(self) -> Path | None:
        rel = self.definition.get("dockerfile")
        return SOURCE_ROOT / rel if rel else None

    @property
    def cross(self) -> bool:
        return True

    @property
    def default_board_profiles(self) -> tuple[str, ...]:
        """The boards its output is gated against unless the build names one: the
        real boards it is for (the definition's `board_profiles`, else Elk 1.x; the
        emulated board provides a superset)."""
        return tuple(self.definition.get("board_profiles") or ("elk-1.x",))

    # ---- CMake -----------------------------------------------------------------

    def _template_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "name": self.name,
            "cpu_flags": " ".join(self.cpu_flags),
            "triple": self.definition.get("triple", ""),
            "gcc_version": self.definition.get("gcc_version", ""),
            "emulator": self.definition.get("emulator"),
        }
        if self.definition.get("sysroot"):
            values.update(sysroot=self.sysroot, suite=self.definition["sysroot"]["suite"])
        return values

    def cmake_toolchain_text(self) -> str:
        """The CMake toolchain file, rendered from its template (pure)."""
        template = _template_env().get_template(self.definition["cmake_template"])
        return template.render(**self._template_values())

    def cmake_toolchain_file(self, *, write: bool = True) -> Path:
        """The toolchain file's path, written unless `write` is False (dry-run).

        Content-addressed, so never stale; it lives in the elkbuild cache, which
        containers mount at the same path.
        """
        text = self.cmake_toolchain_text()
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        path = self._cache_dir() / "toolchains" / f"{self.name}-{digest}.cmake"
        if write and not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(text)
            tmp.replace(path)
        return path

    def cmake_args(self, prefix_path: Sequence[Path] = (), *, ccache: bool = True,
                   write: bool = True) -> list[str]:
        """Arguments for `cmake -S . -B build` so a project builds with this toolchain.

        `ccache` puts ccache in front of the compilers (every image has it; its
        cache is a persistent volume); `write` False only names the toolchain file.
        """
        prefixes = ";".join(str(p) for p in prefix_path)
        args = [f"-DCMAKE_TOOLCHAIN_FILE={self.cmake_toolchain_file(write=write)}"]
        if ccache:
            args += ["-DCMAKE_C_COMPILER_LAUNCHER=ccache", "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"]
        if prefixes:
            args.append(f"-DCMAKE_PREFIX_PATH={prefixes}")
            if self.cross:
                # Seen by the toolchain file; it lists the variable in
                # CMAKE_TRY_COMPILE_PLATFORM_VARIABLES so try_compile() sees it too.
                args.append(f"-DELKBUILD_PREFIX_PATH={prefixes}")
        return args

    # ---- environment and commands ----------------------------------------------

    def env(self) -> dict[str, str]:
        """Variables elkbuild sets for every command of this toolchain."""
        return {"ELKBUILD_TOOLCHAIN": self.name}

    def command_prefix(self) -> list[str]:
        """argv put before every command (the Elk SDK sources its environment script)."""
        return []

    def compiler(self) -> str:
        """The C++ compiler a host install of this toolchain provides."""
        return f"g++-{self.definition['gcc_version']}"

    def c_compiler(self) -> str:
        """The C compiler next to `compiler()`."""
        return f"gcc-{self.definition['gcc_version']}"

    def _identity_parts(self) -> dict[str, Any]:
        parts: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "image": self.image,
            "arch": self.arch,
            "abi": [self.abi.glibc, self.abi.glibcxx],
            "definition": _jsonable(self.definition),
            "cmake": self.cmake_toolchain_text(),
            "env": self.env(),
            "prefix": self.command_prefix(),
        }
        if self.dockerfile and self.dockerfile.is_file():
            parts["dockerfile"] = hashlib.sha256(self.dockerfile.read_bytes()).hexdigest()
        return parts

    def identity(self) -> str:
        """Stable hash of everything that defines this toolchain (build-cache keys)."""
        blob = json.dumps(self._identity_parts(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    def local_problem(self) -> str | None:
        """Why this toolchain cannot run on the host, or None when it can."""
        compiler = self.compiler()
        try:
            require(compiler)
        except ToolMissing:
            return f"{compiler} is not on PATH"
        if self.sysroot and not Path(self.sysroot, "usr", "include").is_dir():
            return f"no arm64 sysroot at {self.sysroot}"
        return None

    def executor(self, cfg: Any, *, local: bool = False, dry_run: bool = False,
                 host: Executor | None = None) -> Executor:
        """The executor that runs this toolchain's commands.

        By default a container of `self.image` with the project, the elkbuild cache
        and elkbuild's own tree mounted at the same paths; with `local` the host
        itself, when the toolchain is installed there. `host` runs the container
        executor's own commands on this machine (the engine, the image).
        """
        if local:
            problem = None if dry_run else self.local_problem()
            if problem:
                raise ToolMissing(self.name, f"{problem}; drop --local to build in the "
                                  f"{self.image} container, or install the toolchain on this host")
            return ToolchainLocalExecutor(dry_run=dry_run, prefix=self.command_prefix(),
                                          base_env=self.env(), name=f"local:{self.name}")
        from elkbuild.docker.container import ContainerExecutor  # late: docker SDK only when needed

        cache_dir = Path(cfg.cache_dir)
        mounts = _unique_paths([Path(cfg.root), cache_dir, SOURCE_ROOT])
        return ContainerExecutor(dry_run=dry_run, image=self.image or "", mounts=mounts,
                                 prefix=self.command_prefix(), base_env=self.env(),
                                 workdir=str(cfg.root), cache_dir=cache_dir,
                                 name=f"container:{self.name}", host=host)

    # ---- variants --------------------------------------------------------------

    def with_installer(self, installer: Path | None = None, sha256: str | None = None) -> Toolchain:
        """An Elk SDK toolchain with a local installer and/or a known sha256."""
        raise UsageError(f"--sdk-installer only applies to elk-sdk toolchains, not {self.name}")

    def _cache_dir(self) -> Path:
        if self.cache_dir is not None:
            return Path(self.cache_dir)
        return default_cache_dir()

    @classmethod
    def from_definition(cls, path: Path, data: dict[str, Any]) -> list[Toolchain]:
        """The toolchain(s) one validated definition file describes."""
        return [cls(name=path.stem, image=data.get("image"), arch=data["arch"],
                    abi=_abi(path, "abi", data["abi"]), definition=data)]


@dataclass(frozen=True)
class DebianCrossToolchain(Toolchain):
    """Debian's aarch64 cross compiler with a Debian sysroot of the board's release."""

    kind: ClassVar[str] = "debian-arm64"

    def env(self) -> dict[str, str]:
        # pkg-config must answer for the target: only the sysroot's .pc files,
        # with paths re-rooted into the sysroot.
        triple = self.definition["triple"]
        sysroot = self.sysroot or ""
        return {**super().env(),
                "PKG_CONFIG_SYSROOT_DIR": sysroot,
                "PKG_CONFIG_LIBDIR": ":".join([
                    f"{sysroot}/usr/lib/{triple}/pkgconfig",
                    f"{sysroot}/usr/lib/pkgconfig",
                    f"{sysroot}/usr/share/pkgconfig",
                ])}

    def compiler(self) -> str:
        return f"{self.definition['triple']}-g++-{self.definition['gcc_version']}"

    def c_compiler(self) -> str:
        return f"{self.definition['triple']}-gcc-{self.definition['gcc_version']}"


@dataclass(frozen=True)
class NativeToolchain(Toolchain):
    """This machine's own compiler (desktop builds and tests)."""

    kind: ClassVar[str] = "native"

    @property
    def cross(self) -> bool:
        return False


@dataclass(frozen=True)
class ElkSdkToolchain(Toolchain):
    """An Elk-PI SDK release (Yocto): one toolchain per version of the definition."""

    kind: ClassVar[str] = "elk-sdk"

    @property
    def release(self) -> SdkRelease:
        assert self.sdk is not None, "an elk-sdk toolchain always has its release"
        return self.sdk

    @property
    def sysroot(self) -> str | None:
        return self.release.target_sysroot_path

    @property
    def default_board_profiles(self) -> tuple[str, ...]:
        return ("elk-0.11",) if self.release.os_version == "0.11" else ("elk-1.x",)

    def _template_values(self) -> dict[str, Any]:
        return {**super()._template_values(), "version": self.release.version,
                "install_dir": self.release.install_dir,
                "target_sysroot": self.release.target_sysroot,
                "native_sysroot": self.release.native_sysroot}

    def env(self) -> dict[str, str]:
        # The SDK's own environment script adds the rest (CC, CXX, SDKTARGETSYSROOT,
        # ...) because commands run through `command_prefix()`.
        return {**super().env(), "ELK_SDK_DIR": self.release.install_dir}

    def command_prefix(self) -> list[str]:
        return ["env", "-u", "LD_LIBRARY_PATH", "bash", "-c", _SOURCE_THEN_EXEC,
                "elk-sdk-env", self.release.environment_path]

    def _identity_parts(self) -> dict[str, Any]:
        sdk = self.release
        return {**super()._identity_parts(),
                "sdk": [sdk.version, sdk.installer_url, sdk.install_dir, sdk.installer_sha256 or ""]}

    def local_problem(self) -> str | None:
        env_script = Path(self.release.environment_path)
        if not env_script.is_file():
            return (f"the Elk SDK {self.release.version} is not installed at "
                    f"{self.release.install_dir} (no {env_script.name})")
        return None

    def with_installer(self, installer: Path | None = None, sha256: str | None = None) -> Toolchain:
        if installer is not None and not Path(installer).is_file():
            raise UsageError(f"--sdk-installer {installer}: no such file",
                             "give the path of the Elk-PI SDK installer (.sh)")
        sdk = replace(self.release,
                      installer=Path(installer).resolve() if installer else self.release.installer,
                      installer_sha256=(sha256.lower() if sha256 else self.release.installer_sha256))
        return replace(self, sdk=sdk)

    @classmethod
    def from_definition(cls, path: Path, data: dict[str, Any]) -> list[Toolchain]:
        found: list[Toolchain] = []
        for version, release in (data.get("versions") or {}).items():
            version = str(version)
            definition = {k: v for k, v in data.items() if k != "versions"}
            definition["version"] = version
            definition["release"] = release
            sdk = SdkRelease(
                version=version,
                installer_url=release["installer_url"],
                installer_sha256=release.get("installer_sha256"),
                install_dir=release["install_dir"],
                environment_script=data["environment_script"],
                target_sysroot=data["target_sysroot"],
                native_sysroot=data["native_sysroot"],
                os_version=str(release.get("os_version", "")),
            )
            found.append(cls(name=f"elk-sdk-{version}", image=data["image"].format(version=version),
                             arch=data["arch"], abi=_abi(path, f"versions.{version}.abi", release.get("abi")),
                             definition=definition, sdk=sdk))
        return found


TOOLCHAIN_KINDS: dict[str, type[Toolchain]] = {
    ElkSdkToolchain.kind: ElkSdkToolchain,
    DebianCrossToolchain.kind: DebianCrossToolchain,
    NativeToolchain.kind: NativeToolchain,
}
"""Each `kind:` a toolchain/*.yaml may declare, and the class that implements it."""
KINDS = tuple(TOOLCHAIN_KINDS)


@dataclass
class ToolchainLocalExecutor(LocalExecutor):
    """The host, with a toolchain's environment and command prefix applied."""

    prefix: list[str] = field(default_factory=list)
    base_env: dict[str, str] = field(default_factory=dict)

    def _run(self, argv: list[str], *, cwd: str | None, env: Mapping[str, str] | None,
             input: str | bytes | None, timeout: float | None,
             on_line: LineSink | None) -> Completed:
        full = [*self.prefix, *argv]
        done = super()._run(full, cwd=cwd, env={**self.base_env, **(env or {})}, input=input,
                            timeout=timeout, on_line=on_line)
        return Completed(argv, done.returncode, done.stdout, done.stderr)


@dataclass
class OnDemandExecutor:
    """A toolchain's executor, made on the first call only, so an up-to-date build
    starts no container. A container executor's image is built first when it is
    missing (a no-op when it is up to date), so a build works on a machine that
    has none yet; `display` shows that image build."""

    toolchain: Toolchain
    cfg: Any
    host: Executor
    local: bool = False
    dry_run: bool = False
    display: Any = None
    _made: Executor | None = None

    def __call__(self) -> Executor:
        if self._made is None:
            if not self.local:
                self._ensure_image()
            self._made = self.toolchain.executor(self.cfg, local=self.local, dry_run=self.dry_run,
                                                 host=self.host)
        return self._made

    def _ensure_image(self) -> None:
        if self.dry_run:
            log.info("would build the image %s if it is missing", self.toolchain.image)
            return
        from elkbuild.docker.commands import build_image, image_toolchain  # late: the Docker SDK

        build_image(self.cfg, image_toolchain(self.toolchain.name, cfg=self.cfg), host=self.host,
                    display=self.display)


@dataclass(frozen=True)
class Workspace:
    """The part of a project's configuration a toolchain's executor and image need,
    for builds that belong to no project (what elkbuild itself puts on a board)."""

    root: Path
    cache_dir: Path

    def section(self, name: str) -> dict[str, Any]:
        return {}


def board_program_executor(cache_dir: Path, host: Executor, *,
                           work_dir: Path | None = None) -> OnDemandExecutor:
    """What compiles the programs elkbuild itself runs on a board (the emulated
    board's stand-ins, the aarch64 vst3host): BOARD_TOOLCHAIN's container, so they
    have the same compiler and glibc floor as the plugins. It sees the cache (and
    `work_dir`, when given); made, and its image built, on first use only."""
    workspace = Workspace(root=Path(work_dir or cache_dir), cache_dir=Path(cache_dir))
    return OnDemandExecutor(get_toolchain(BOARD_TOOLCHAIN), workspace, host)


# ---- registry ------------------------------------------------------------------


def default_cache_dir() -> Path:
    return Path(os.environ.get("ELKBUILD_CACHE") or Path.home() / ".cache" / "elkbuild")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _unique_paths(paths: Sequence[Path]) -> list[Path]:
    """Mount points without duplicates or paths nested inside another one."""
    # Absolute but not resolved: the container must see the paths the host uses.
    resolved = sorted({Path(os.path.abspath(p)) for p in paths}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in resolved:
        if not any(path == k or k in path.parents for k in kept):
            kept.append(path)
    return kept


@lru_cache(maxsize=1)
def _template_env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TOOLCHAIN_DIR)),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True)


def _load_definition(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ConfigError(path, "", data, "a toolchain definition must be a mapping")
    kind = data.get("kind")
    if kind not in KINDS:
        raise ConfigError(path, "kind", kind, f"allowed: {', '.join(KINDS)}")
    required = ("arch", "cmake_template", "image", "environment_script", "target_sysroot",
                "native_sysroot", "versions") if kind == "elk-sdk" else ("arch", "cmake_template", "abi")
    for key in required:
        if key not in data:
            raise ConfigError(path, key, MISSING, "is required")
    profiles = data.get("board_profiles")
    if profiles is not None and not (isinstance(profiles, list) and profiles
                                     and all(isinstance(p, str) for p in profiles)):
        raise ConfigError(path, "board_profiles", profiles,
                          "must be a non-empty list of board profile names, e.g. [elk-0.11, elk-1.x]")
    return data


def _abi(path: Path, key: str, raw: Any) -> Abi:
    if not isinstance(raw, dict) or not {"glibc", "glibcxx"} <= set(raw):
        raise ConfigError(path, key, raw, "needs glibc and glibcxx versions, e.g. {glibc: '2.36', glibcxx: '3.4.30'}")
    return Abi(glibc=str(raw["glibc"]), glibcxx=str(raw["glibcxx"]))


def _build_registry() -> dict[str, Toolchain]:
    registry: dict[str, Toolchain] = {}
    for path in sorted(TOOLCHAIN_DIR.glob("*.yaml")):
        data = _load_definition(path)
        for toolchain in TOOLCHAIN_KINDS[data["kind"]].from_definition(path, data):
            registry[toolchain.name] = toolchain
    return registry


TOOLCHAINS: dict[str, Toolchain] = _build_registry()
"""Every known toolchain by name (elk-sdk-0.11.0, elk-sdk-1.0.0, elk-sdk-1.1.0, debian-arm64, native)."""

BOARD_TOOLCHAIN: str = DEFAULTS["toolchain"]
"""The default toolchain (debian-arm64), which also builds every program elkbuild
itself runs on a board: one compiler for everything on a board."""


def get_toolchain(name: str, cfg: Any = None) -> Toolchain:
    """The toolchain called `name`; UsageError listing the known names otherwise.

    With `cfg`, the toolchain's generated files go to that project's cache dir.
    """
    try:
        toolchain = TOOLCHAINS[name]
    except KeyError:
        raise UsageError(f"unknown toolchain {name!r}; known: {', '.join(sorted(TOOLCHAINS))}",
                         "pick one of the known toolchains (--toolchain NAME)") from None
    if cfg is not None:
        toolchain = replace(toolchain, cache_dir=Path(cfg.cache_dir))
        toolchain = _apply_project_settings(toolchain, cfg)
    return toolchain


def _apply_project_settings(toolchain: Toolchain, cfg: Any) -> Toolchain:
    """toolchains.<name>.sdk_installer / sdk_sha256 from the project's configuration."""
    section = getattr(cfg, "section", None)
    entry: Any = section("toolchains") if section else None
    # Layered config splits keys at dots: elk-sdk-1.0.0 arrives as elk-sdk-1 > 0 > 0.
    for part in ([toolchain.name] if entry and toolchain.name in entry else toolchain.name.split(".")):
        entry = entry.get(part) if isinstance(entry, dict) else None
    if not entry:
        return toolchain
    key = f"toolchains.{toolchain.name}"
    if not isinstance(entry, dict) or set(entry) - {"sdk_installer", "sdk_sha256"} or not toolchain.sdk:
        raise ConfigError(cfg.origin(key), key, entry,
                          "allowed: sdk_installer (path) and sdk_sha256 (64 hex digits), "
                          "for elk-sdk-<version> toolchains only")
    installer, sha256 = entry.get("sdk_installer"), entry.get("sdk_sha256")
    if sha256 is not None and not (isinstance(sha256, str) and len(sha256) == 64
                                   and all(c in "0123456789abcdefABCDEF" for c in sha256)):
        raise ConfigError(cfg.origin(f"{key}.sdk_sha256"), f"{key}.sdk_sha256", sha256,
                          "must be a sha256: 64 hex digits")
    path = None
    if installer is not None:
        path = Path(str(installer)).expanduser()
        if not path.is_absolute():
            path = Path(cfg.root) / path
        if not path.is_file():
            raise ConfigError(cfg.origin(f"{key}.sdk_installer"), f"{key}.sdk_installer", str(installer),
                              "no such file", "give the path of the Elk-PI SDK installer (.sh)")
    return toolchain.with_installer(path, sha256)
