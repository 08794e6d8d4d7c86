"""Dependency recipes: data files that say what to fetch, patch, build and stage.

A recipe is a YAML file (built-in ones live in elkbuild/deps/recipes/, a project
may add its own in <project>/deps/recipes/). It is validated as a whole when
loaded, so a typo surfaces with the file and field before anything is fetched.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from elkbuild.errors import ConfigError, MISSING, UsageError, ValidationFailed

BUILTIN_RECIPES = Path(__file__).resolve().parent / "recipes"
BUILTIN_PATCHES = Path(__file__).resolve().parent / "patches"

UNKNOWN_SHA256 = "unknown"
"""A download whose digest nobody has verified yet; see elkbuild.deps.lockfile."""

SOURCE_KINDS = ("url", "git", "deb", "deb-src", "wheel", "path")
BUILD_SYSTEMS = ("cmake", "copy", "debian")
VARIANTS = ("default", "source", "debian")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._+-]*$")
_PINNED_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[0-9][A-Za-z0-9.+!-]*$")


@dataclass(frozen=True)
class Source:
    """One input of a recipe. `id` names it in messages, the lock file and the cache."""

    id: str
    kind: str                     # one of SOURCE_KINDS
    url: str = ""                 # url, git
    sha256: str = UNKNOWN_SHA256  # url, deb, wheel: the file's digest ("unknown": the lock file's)
    tag: str = ""                 # git
    package: str = ""             # deb, deb-src; wheel: the requirement, e.g. onnxruntime==1.21.1
    suite: str = ""               # deb, deb-src
    arch: str = "arm64"           # deb
    path: str = ""                # path (relative to the recipe file)
    strip_components: int = 1     # url archives: leading folders to drop
    stage: bool = True            # deb: False = a build-time package, unpacked for the build only
    platform: str = ""            # wheel: platform tag, e.g. manylinux2014_aarch64
    python: str = ""              # wheel: Python version whose wheel is taken, e.g. 3.11

    @property
    def pinned(self) -> bool:
        return self.kind != "url" or self.sha256 != UNKNOWN_SHA256


@dataclass(frozen=True)
class InstallRule:
    """Copy files matching `glob` under a root into the staged prefix at `to`.

    root: "source" (the patched source tree), "build" (the CMake build tree),
    "install" (CMake's install prefix), "overlay" (build-time Debian packages)
    or "fetch:<content>" (a FetchContent dependency's source tree).
    """

    root: str
    glob: str
    to: str
    flatten: bool = False


@dataclass(frozen=True)
class FetchContentSpec:
    """Dependencies a CMake project fetches itself at configure time.

    `modules` is the folder (inside the main source) with the project's
    OverridableFetchContent_Declare calls; `contents` the names elkbuild routes
    through its source cache, so the configure step never touches the network.
    """

    modules: str
    contents: tuple[str, ...]


@dataclass(frozen=True)
class BuildSpec:
    system: str                                  # one of BUILD_SYSTEMS
    source_subdir: str = ""
    options: tuple[tuple[str, str], ...] = ()
    cflags: tuple[str, ...] = ()
    cxxflags: tuple[str, ...] = ()
    system_processor: str = ""                   # forces CMAKE_SYSTEM_PROCESSOR after the toolchain file
    targets: tuple[str, ...] = ()
    cmake_install: bool = False


@dataclass(frozen=True)
class Recipe:
    name: str
    version: str
    variant: str
    toolchains: tuple[str, ...]
    description: str
    sources: tuple[Source, ...]
    patches: tuple[str, ...]
    fetchcontent: FetchContentSpec | None
    build: BuildSpec
    install: tuple[InstallRule, ...]
    outputs: tuple[str, ...]
    include_dirs: tuple[str, ...]
    file: Path
    text: str = field(repr=False, default="")

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version}"

    def fits(self, toolchain_name: str) -> bool:
        return any(fnmatch.fnmatchcase(toolchain_name, pattern) for pattern in self.toolchains)

    def patch_files(self) -> list[Path]:
        return [resolve_patch(self.file, p) for p in self.patches]

    def digest(self) -> str:
        """Hash of the recipe's own text: any edit to it is a changed input."""
        return hashlib.sha256(self.text.encode()).hexdigest()

    def source(self, source_id: str) -> Source:
        for source in self.sources:
            if source.id == source_id:
                return source
        raise KeyError(source_id)


def resolve_patch(recipe_file: Path, name: str) -> Path:
    """Patches are looked up beside the recipe first, then among the built-in ones."""
    beside = recipe_file.parent.parent / "patches" / name
    return beside if beside.is_file() else BUILTIN_PATCHES / name


class _Problems:
    """Collects every problem of one file, so the user fixes them in one go."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.items: list[str] = []

    def add(self, key: str, found: Any, allowed: str) -> None:
        shown = "missing" if found is MISSING else f"is {found!r}"
        self.items.append(f"{self.file}: {key} {shown}; {allowed}")


def _text(doc: Mapping[str, Any], key: str, where: str, problems: _Problems,
          required: bool = True, default: str = "") -> str:
    value = doc.get(key, MISSING)
    if value is MISSING:
        if required:
            problems.add(f"{where}{key}", MISSING, "a text value is required")
        return default
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        problems.add(f"{where}{key}", value, "expected a non-empty text value")
        return default
    return value


def _texts(doc: Mapping[str, Any], key: str, where: str, problems: _Problems) -> tuple[str, ...]:
    value = doc.get(key, [])
    if isinstance(value, str) or not isinstance(value, list) or not all(
            isinstance(v, (str, int, float)) for v in value):
        problems.add(f"{where}{key}", value, "expected a list of text values")
        return ()
    return tuple(str(v) for v in value)


def _unknown_keys(doc: Mapping[str, Any], allowed: Iterable[str], where: str,
                  problems: _Problems) -> None:
    allowed = tuple(allowed)
    for key in doc:
        if key not in allowed:
            problems.add(f"{where}{key}", doc[key], f"unknown field; allowed: {', '.join(allowed)}")


def _source(doc: Any, index: int, problems: _Problems) -> Source | None:
    where = f"sources[{index}]."
    if not isinstance(doc, dict):
        problems.add(f"sources[{index}]", doc, "expected a mapping with id and one of " + ", ".join(SOURCE_KINDS))
        return None
    kinds = [k for k in SOURCE_KINDS if k in doc]
    if len(kinds) != 1:
        problems.add(f"sources[{index}]", sorted(doc), f"exactly one of {', '.join(SOURCE_KINDS)} is required")
        return None
    kind = kinds[0]
    _unknown_keys(doc, ("id", *SOURCE_KINDS, "sha256", "tag", "suite", "arch", "strip_components", "stage",
                        "platform", "python"),
                  where, problems)
    source_id = _text(doc, "id", where, problems)
    if source_id and not _NAME.match(source_id):
        problems.add(f"{where}id", source_id, "use lower-case letters, digits, '.', '_', '+', '-'")
    fields: dict[str, Any] = {"id": source_id, "kind": kind}
    if "sha256" in doc and kind in ("url", "deb", "wheel"):
        sha = str(doc.get("sha256", UNKNOWN_SHA256)).lower()
        if sha != UNKNOWN_SHA256 and not _SHA256.match(sha):
            problems.add(f"{where}sha256", doc.get("sha256"),
                         f"expected 64 hex digits, or '{UNKNOWN_SHA256}' until it is verified")
        fields["sha256"] = sha
    elif "sha256" in doc:
        problems.add(f"{where}sha256", doc.get("sha256"),
                     "only url, deb and wheel sources take a sha256 (git and deb-src are pinned "
                     "in the lock file)")
    if kind == "url":
        fields["url"] = _text(doc, "url", where, problems)
        strip = doc.get("strip_components", 1)
        if not isinstance(strip, int) or isinstance(strip, bool) or strip < 0:
            problems.add(f"{where}strip_components", strip, "expected a whole number >= 0")
        else:
            fields["strip_components"] = strip
    elif kind == "git":
        fields["url"] = _text(doc, "git", where, problems)
        fields["tag"] = _text(doc, "tag", where, problems)
    elif kind in ("deb", "deb-src"):
        fields["package"] = _text(doc, kind, where, problems)
        fields["suite"] = _text(doc, "suite", where, problems)
        fields["arch"] = _text(doc, "arch", where, problems, required=False, default="arm64")
        stage = doc.get("stage", True)
        if not isinstance(stage, bool) or (kind == "deb-src" and "stage" in doc):
            problems.add(f"{where}stage", stage, "expected true or false (binary packages only)")
        else:
            fields["stage"] = stage
    elif kind == "wheel":
        requirement = _text(doc, "wheel", where, problems)
        if requirement and not _PINNED_REQUIREMENT.match(requirement):
            problems.add(f"{where}wheel", requirement, "expected an exact requirement, e.g. onnxruntime==1.21.1")
        fields["package"] = requirement
        fields["platform"] = _text(doc, "platform", where, problems)
        fields["python"] = _text(doc, "python", where, problems, required=False, default="3.11")
        fields["strip_components"] = 0  # a wheel's files sit at its top level
    else:
        fields["path"] = _text(doc, "path", where, problems)
    return Source(**fields)


def _build(doc: Any, problems: _Problems) -> BuildSpec:
    if not isinstance(doc, dict):
        problems.add("build", doc, f"expected a mapping with system: one of {', '.join(BUILD_SYSTEMS)}")
        return BuildSpec(system="copy")
    _unknown_keys(doc, ("system", "source_subdir", "options", "cflags", "cxxflags",
                        "system_processor", "targets", "cmake_install"), "build.", problems)
    system = _text(doc, "system", "build.", problems, default="copy")
    if system not in BUILD_SYSTEMS:
        problems.add("build.system", system, f"allowed: {', '.join(BUILD_SYSTEMS)}")
    options = doc.get("options", {}) or {}
    pairs: list[tuple[str, str]] = []
    if not isinstance(options, dict):
        problems.add("build.options", options, "expected a mapping of CMake cache variables to values")
    else:
        for key, value in options.items():
            if isinstance(value, bool):
                value = "ON" if value else "OFF"
            if not isinstance(value, (str, int, float)):
                problems.add(f"build.options.{key}", value, "expected a text, number or true/false")
                continue
            pairs.append((str(key), str(value)))
    install = doc.get("cmake_install", False)
    if not isinstance(install, bool):
        problems.add("build.cmake_install", install, "expected true or false")
        install = False
    return BuildSpec(
        system=system,
        source_subdir=str(doc.get("source_subdir", "") or ""),
        options=tuple(pairs),
        cflags=_texts(doc, "cflags", "build.", problems),
        cxxflags=_texts(doc, "cxxflags", "build.", problems),
        system_processor=str(doc.get("system_processor", "") or ""),
        targets=_texts(doc, "targets", "build.", problems),
        cmake_install=install,
    )


def _install(doc: Any, problems: _Problems) -> tuple[InstallRule, ...]:
    if doc is None:
        return ()
    if not isinstance(doc, list):
        problems.add("install", doc, "expected a list of {from, glob, to} rules")
        return ()
    rules = []
    for i, item in enumerate(doc):
        where = f"install[{i}]."
        if not isinstance(item, dict):
            problems.add(f"install[{i}]", item, "expected a mapping with from, glob, to")
            continue
        _unknown_keys(item, ("from", "glob", "to", "flatten"), where, problems)
        root = _text(item, "from", where, problems)
        if root and root not in ("source", "build", "install", "overlay") and not root.startswith("fetch:"):
            problems.add(f"{where}from", root, "allowed: source, build, install, overlay, fetch:<content>")
        to = _text(item, "to", where, problems)
        if to and (to.startswith("/") or ".." in Path(to).parts):
            problems.add(f"{where}to", to, "must be a path inside the staged prefix")
        rules.append(InstallRule(root=root, glob=_text(item, "glob", where, problems), to=to,
                                 flatten=bool(item.get("flatten", False))))
    return tuple(rules)


def parse_recipe(file: Path, text: str) -> Recipe:
    problems = _Problems(file)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(file, "", MISSING, f"is not valid YAML{line}: {getattr(error, 'problem', error)}",
                          "fix the YAML syntax") from None
    if not isinstance(doc, dict):
        raise ConfigError(file, "", MISSING, "must be a mapping with name, version, sources, build")
    _unknown_keys(doc, ("name", "version", "variant", "toolchains", "description", "sources",
                        "patches", "fetchcontent", "build", "install", "outputs", "include_dirs"),
                  "", problems)
    name = _text(doc, "name", "", problems)
    if name and not _NAME.match(name):
        problems.add("name", name, "use lower-case letters, digits, '.', '_', '+', '-'")
    version = _text(doc, "version", "", problems)
    variant = str(doc.get("variant", "default"))
    if variant not in VARIANTS:
        problems.add("variant", variant, f"allowed: {', '.join(VARIANTS)}")
    toolchains = _texts(doc, "toolchains", "", problems)
    if not toolchains:
        problems.add("toolchains", doc.get("toolchains", MISSING), "list the toolchain names (globs allowed) it builds for")
    raw_sources = doc.get("sources", [])
    sources: list[Source] = []
    if not isinstance(raw_sources, list) or not raw_sources:
        problems.add("sources", raw_sources, "expected a non-empty list")
    else:
        for i, item in enumerate(raw_sources):
            source = _source(item, i, problems)
            if source:
                sources.append(source)
        ids = [s.id for s in sources]
        for dup in sorted({i for i in ids if ids.count(i) > 1}):
            problems.add("sources", dup, "source ids must be unique")
    patches = _texts(doc, "patches", "", problems)
    for i, patch in enumerate(patches):
        if not resolve_patch(file, patch).is_file():
            problems.add(f"patches[{i}]", patch,
                         f"no such patch beside the recipe or in {BUILTIN_PATCHES}")
    fc = doc.get("fetchcontent")
    fetchcontent = None
    if fc is not None:
        if not isinstance(fc, dict):
            problems.add("fetchcontent", fc, "expected a mapping with modules and contents")
        else:
            _unknown_keys(fc, ("modules", "contents"), "fetchcontent.", problems)
            fetchcontent = FetchContentSpec(_text(fc, "modules", "fetchcontent.", problems),
                                            _texts(fc, "contents", "fetchcontent.", problems))
    build = _build(doc.get("build", MISSING), problems)
    if build.system == "debian" and not any(s.kind == "deb" and s.stage for s in sources):
        problems.add("build.system", "debian", "needs at least one staged 'deb' source")
    outputs = _texts(doc, "outputs", "", problems)
    if not outputs:
        problems.add("outputs", doc.get("outputs", MISSING),
                     "list the files the staged prefix must contain (e.g. include/x.h, lib/libx.so)")
    recipe = Recipe(
        name=name, version=version, variant=variant, toolchains=toolchains,
        description=str(doc.get("description", "")), sources=tuple(sources),
        patches=patches, fetchcontent=fetchcontent, build=build,
        install=_install(doc.get("install"), problems), outputs=outputs,
        include_dirs=_texts(doc, "include_dirs", "", problems) or ("include",),
        file=file, text=text)
    if problems.items:
        raise ValidationFailed(f"recipe {file}", problems.items,
                               "fix the fields named above; see elkbuild/deps/recipes/ for examples")
    return recipe


def load_recipe(file: Path) -> Recipe:
    return parse_recipe(file, file.read_text())


def recipe_dirs(project_root: Path | None) -> list[Path]:
    dirs = [BUILTIN_RECIPES]
    if project_root is not None and (project_root / "deps" / "recipes").is_dir():
        dirs.append(project_root / "deps" / "recipes")
    return dirs


def load_recipes(dirs: Iterable[Path]) -> list[Recipe]:
    """All recipes; a project recipe with the same name and variant replaces a built-in one."""
    found: dict[tuple[str, str, tuple[str, ...]], Recipe] = {}
    for folder in dirs:
        for file in sorted(folder.glob("*.yaml")):
            recipe = load_recipe(file)
            found[(recipe.name, recipe.variant, recipe.toolchains)] = recipe
    return list(found.values())


def select(recipes: Iterable[Recipe], toolchain: str, only: str | None = None,
           variant: str = "default") -> list[Recipe]:
    """The recipes to build for `toolchain`: one per dependency name.

    A variant (`source`, `debian`) is preferred where a recipe of it exists; a
    dependency without one falls back to its default recipe.
    """
    fitting = [r for r in recipes if r.fits(toolchain)]

    def preference(recipe: Recipe) -> tuple[str, int]:
        rank = 0 if recipe.variant == variant else 1 if recipe.variant == "default" else 2
        return recipe.name, rank

    by_name: dict[str, Recipe] = {}
    for recipe in sorted(fitting, key=preference):
        by_name.setdefault(recipe.name, recipe)
    if only:
        if only not in by_name:
            names = ", ".join(sorted(by_name)) or "none"
            raise UsageError(f"--only {only!r}: no recipe of that name for toolchain {toolchain!r}",
                             f"choose one of: {names}")
        return [by_name[only]]
    return [by_name[n] for n in sorted(by_name)]


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
