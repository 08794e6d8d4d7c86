"""build-deps and fetch-sources: recipes -> source cache -> patch -> build -> staged prefix.

The toolchain and the executors are injected: builds run through the executor
the toolchain hands out (its container by default, the host with --local), and
downloads through `fetch_executor` on the host, where the cache and the network
are. The build executor is created only when something must be built, so an
up-to-date run starts no container. A dry run (`dry_run`, with dry-run executors)
says what would be fetched, run and staged, and fetches, unpacks and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from elkbuild.elf import version_key
from elkbuild.errors import BuildError
from elkbuild.executor import Executor, LocalExecutor, installed
from elkbuild.reporting import LOG, Reporter
from elkbuild.locks import locked
from elkbuild.deps import build_cache, cmake_build, fetchcontent, staging
from elkbuild.deps.archives import extract
from elkbuild.deps.lockfile import LOCK_FILE_NAME, PinFile, now
from elkbuild.deps.patching import apply_patches
from elkbuild.deps.recipes import Recipe, Source, load_recipes, recipe_dirs, select
from elkbuild.deps.source_cache import FetchReport, MissingSources, SourceCache

log = logging.getLogger("elkbuild.deps")


@dataclass
class DepResult:
    name: str
    version: str
    variant: str
    status: str                      # "up to date" | "built" | "would build" (dry run)
    prefix: Path
    changed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    needs: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "variant": self.variant,
                "status": self.status, "prefix": str(self.prefix), "changed": self.changed,
                "seconds": round(self.seconds, 3), "needs": self.needs}


class DepsRunner:
    def __init__(self, cfg: Any, toolchain: Any, *, fetch_executor: Executor,
                 make_executor: Callable[[], Executor] | None = None,
                 offline: bool = False, jobs: int | None = None, variant: str = "default",
                 allow_unpinned: bool = False, update: bool = False,
                 reporter: Reporter | None = None, recipes: list[Recipe] | None = None,
                 mirror: str | None = None, dry_run: bool = False) -> None:
        self.cfg = cfg
        self.dry_run = dry_run
        self.toolchain = toolchain
        self.make_executor = make_executor
        self._executor: Executor | None = None
        self.fetch_executor = fetch_executor  # this machine: downloads, apt, unpacking
        self.offline = offline
        self.jobs = jobs or os.cpu_count() or 2
        self.variant = variant
        self.reporter = reporter or LOG
        self.pins = PinFile(Path(cfg.root) / LOCK_FILE_NAME)
        self.cache = SourceCache(Path(cfg.cache_dir), self.pins, offline=offline,
                                 allow_unpinned=allow_unpinned, update_debs=update,
                                 mirror=mirror)
        self._recipes = recipes
        self._identity: str | None = None

    @classmethod
    def for_project(cls, cfg: Any, toolchain: Any, **options: Any) -> DepsRunner:
        """A runner with the project's dependency settings (its Debian mirror)."""
        mirror = (cfg.section("dependencies") or {}).get("debian_mirror")
        return cls(cfg, toolchain, mirror=mirror if isinstance(mirror, str) else None, **options)

    # ---- selection and status ----------------------------------------------

    def recipes(self, only: str | None = None) -> list[Recipe]:
        found = self._recipes if self._recipes is not None else load_recipes(recipe_dirs(Path(self.cfg.root)))
        return select(found, self.toolchain.name, only, self.variant)

    @property
    def deps_dir(self) -> Path:
        return Path(self.cfg.build_dir) / "deps" / self.toolchain.name

    def prefix(self, recipe: Recipe) -> Path:
        return staging.prefix_dir(Path(self.cfg.build_dir), self.toolchain.name, recipe.key)

    def identity(self) -> str:
        if self._identity is None:
            self._identity = str(self.toolchain.identity())
        return self._identity

    def inputs(self, recipe: Recipe) -> tuple[dict[str, str], list[str]]:
        """Named input digests, and the sources that have no pin yet."""
        pins: dict[str, str] = {}
        unpinned = []
        for source in recipe.sources:
            if source.kind == "path":
                path = (recipe.file.parent / source.path).resolve()
                pins[source.id] = build_cache.tree_digest(path) if path.exists() else "missing"
                continue
            pin = self.cache.expected_sha256(source)
            if pin is None:
                unpinned.append(source.id)
                pin = "unpinned"
            pins[source.id] = pin
        options = {"variant": recipe.variant, "arch": str(self.toolchain.arch)}
        return build_cache.inputs(recipe, pins, self.identity(), options), unpinned

    def status(self, recipe: Recipe) -> tuple[bool, dict[str, str], list[str]]:
        named, unpinned = self.inputs(recipe)
        meta = staging.read_metadata(self.prefix(recipe))
        if meta is None:
            return False, named, ["no staged prefix yet"]
        if unpinned:
            return False, named, [f"source {s} (not pinned yet)" for s in unpinned]
        if meta.get("key") == build_cache.key(named) and all(
                (self.prefix(recipe) / o).exists() for o in recipe.outputs):
            return True, named, []
        changed = build_cache.changed(meta.get("inputs", {}), named)
        return False, named, changed or ["staged outputs missing"]

    # ---- build-deps ----------------------------------------------------------

    def build(self, only: str | None = None, force: bool = False) -> list[DepResult]:
        results = []
        selected = self.recipes(only)
        todo: list[tuple[Recipe, dict[str, str], list[str]]] = []
        for recipe in selected:
            started = time.monotonic()
            fresh, named, changed = self.status(recipe)
            if fresh and not force:
                self.reporter.step(f"{recipe.key} ({self.toolchain.name}): up to date")
                meta = staging.read_metadata(self.prefix(recipe)) or {}
                results.append(DepResult(recipe.name, recipe.version, recipe.variant, "up to date",
                                         self.prefix(recipe), [], time.monotonic() - started,
                                         meta.get("needs", {})))
            else:
                todo.append((recipe, named, changed if not fresh else ["--force"]))
        if self.offline and todo:
            gaps = [gap for recipe, _, _ in todo for gap in self.cache.missing(recipe, self._known_fetch_sources(recipe))]
            if gaps:
                raise MissingSources(gaps)
        for recipe, named, changed in todo:
            results.append(self._plan_one(recipe, changed) if self.dry_run
                           else self._build_one(recipe, changed))
        return results

    def stage(self, dependency: str) -> Path:
        """The staged prefix of one dependency, built first when it is not up to date
        (in a dry run: where it would be staged)."""
        (result,) = self.build(only=dependency)
        return result.prefix

    def _plan_one(self, recipe: Recipe, changed: list[str]) -> DepResult:
        """What _build_one would do, said through the reporter and the dry-run executor."""
        started = time.monotonic()
        say = self.reporter.step
        say(f"{recipe.key} ({self.toolchain.name}): would build, because: {', '.join(changed)}")
        for source in recipe.sources:
            gap = self.cache.gap(recipe, source)
            if gap is not None:
                say(f"would fetch {gap.what}")
        work = self.deps_dir / ".work" / recipe.key
        if recipe.build.system == "debian":
            for source in recipe.sources:
                pin = self.cache.deb_pin(source) if source.kind == "deb" and source.stage else None
                if pin is not None:
                    self._executor_for_build().run(["dpkg", "-x", str(self.cache.deb_path(pin)),
                                                    str(work / "debs" / Path(pin.file_name).stem)])
        elif recipe.build.system == "cmake":
            if recipe.fetchcontent is not None:
                say(f"{recipe.key}: FetchContent sources are found once the source is unpacked")
            source_tree = work / "src"
            prefix_path = ([work / "overlay" / "usr"]
                           if any(s.kind == "deb" and not s.stage for s in recipe.sources) else [])
            steps = cmake_build.plan(recipe, self.toolchain, work, source_tree, {}, self.jobs,
                                     use_ccache=self._use_ccache(), prefix_path=prefix_path,
                                     placeholders={"overlay": str(work / "overlay"),
                                                   "source": str(source_tree)},
                                     write=False)
            for argv in steps["commands"]:
                self._executor_for_build().run(argv)
        prefix = self.prefix(recipe)
        say(f"{recipe.key}: would stage {prefix} (with {staging.METADATA})")
        return DepResult(recipe.name, recipe.version, recipe.variant, "would build", prefix, changed,
                         time.monotonic() - started)

    def _use_ccache(self) -> bool:
        """ccache is in every image; on the host only when it is installed (a choice, not a need)."""
        return not isinstance(self._executor_for_build(), LocalExecutor) or installed("ccache")

    def _build_one(self, recipe: Recipe, changed: list[str]) -> DepResult:
        started = time.monotonic()
        self.reporter.step(f"{recipe.key} ({self.toolchain.name}): building, because: {', '.join(changed)}")
        with locked(self.deps_dir / f".{recipe.key}.lock"):
            paths = self._fetch_all(recipe, FetchReport())
            # Pins may have been written just now (first use): key the prefix on them.
            named, _ = self.inputs(recipe)
            work = self.deps_dir / ".work" / recipe.key
            if work.exists():
                shutil.rmtree(work)
            work.mkdir(parents=True)
            stage = staging.Stage(self.prefix(recipe))
            try:
                roots = self._prepare_and_build(recipe, paths, work, stage.path)
                copied = staging.copy_rules(recipe.install, roots, stage.path)
                if recipe.install and copied == 0:
                    raise BuildError(f"{recipe.file}: the install rules matched no files",
                                     "check the globs against the built tree")
                facts = staging.check_outputs(stage.path, recipe.outputs, str(self.toolchain.arch), recipe.file)
                meta = self._metadata(recipe, named, facts)
                final = stage.commit(meta)
            except BaseException:
                stage.discard()
                raise
        self._warn_abi(recipe, facts.get("needs", {}))
        seconds = time.monotonic() - started
        self.reporter.step(f"{recipe.key} ({self.toolchain.name}): staged in {final} ({seconds:.1f} s)")
        return DepResult(recipe.name, recipe.version, recipe.variant, "built", final, changed,
                         seconds, facts.get("needs", {}))

    def _executor_for_build(self) -> Executor:
        if self._executor is None:
            if self.make_executor is None:
                raise BuildError("no executor to build with", "pass a toolchain executor")
            self._executor = self.make_executor()
            if self.dry_run and not self._executor.dry_run:
                raise BuildError(f"a dry run of build-deps was given the executor "
                                 f"{self._executor.name}, which would really run commands",
                                 "make the toolchain's executor with dry_run=True")
        return self._executor

    def _fetch_all(self, recipe: Recipe, report: FetchReport) -> dict[str, Path]:
        paths = {}
        for source in recipe.sources:
            paths[source.id] = self._fetch_one(recipe, source, report)
        return paths

    def _fetch_one(self, recipe: Recipe, source: Source, report: FetchReport | None = None) -> Path:
        report = report if report is not None else FetchReport()
        before = len(report.fetched)
        path = self.cache.fetch(recipe, source, self.fetch_executor, report)
        if len(report.fetched) > before:
            self.reporter.step(f"fetched {report.fetched[-1]}")
        return path

    def _main_source(self, recipe: Recipe) -> Source | None:
        for source in recipe.sources:
            if source.kind != "deb":
                return source
        return None  # only binary packages

    def _unpack(self, source: Source, path: Path, into: Path) -> None:
        if source.kind == "path" and path.is_dir():
            shutil.copytree(path, into, symlinks=True)
        elif source.kind == "deb-src":
            shutil.copytree(path, into, symlinks=True)
        elif source.kind == "git":
            extract(path, into, strip_components=1)
        else:
            extract(path, into, strip_components=source.strip_components)

    def _prepare_and_build(self, recipe: Recipe, paths: dict[str, Path], work: Path,
                           prefix: Path) -> dict[str, Path]:
        roots: dict[str, Path] = {}
        if recipe.build.system == "debian":
            debs = [paths[s.id] for s in recipe.sources if s.kind == "deb" and s.stage]
            self.reporter.step(f"{recipe.key}: unpacking {len(debs)} Debian package(s)")
            staging.unpack_debs(self._executor_for_build(), debs, prefix, work / "debs")
            return roots
        main = self._main_source(recipe)
        if main is None:
            raise BuildError(f"{recipe.file}: build.system {recipe.build.system} needs a source that is not a .deb")
        source_tree = work / "src"
        self.reporter.step(f"{recipe.key}: unpacking {main.id}")
        self._unpack(main, paths[main.id], source_tree)
        roots["source"] = source_tree
        if recipe.patches:
            changed_files = apply_patches(source_tree, recipe.patch_files())
            self.reporter.step(f"{recipe.key}: patched {', '.join(changed_files)}")
        fetch_dirs = self._fetchcontent(recipe, source_tree, work, roots)
        prefix_path = []
        build_debs = [paths[s.id] for s in recipe.sources if s.kind == "deb" and not s.stage]
        if build_debs:
            # Build-time packages keep Debian's /usr layout, so their CMake package
            # files (which locate their prefix relative to themselves) work as they are.
            overlay = work / "overlay"
            self.reporter.step(f"{recipe.key}: unpacking {len(build_debs)} build-time package(s)")
            staging.unpack_overlay(self._executor_for_build(), build_debs, overlay)
            prefix_path.append(overlay / "usr")
            roots["overlay"] = overlay
        if recipe.build.system == "cmake":
            executor = self._executor_for_build()
            steps = cmake_build.plan(recipe, self.toolchain, work, source_tree, fetch_dirs, self.jobs,
                                     use_ccache=self._use_ccache(), prefix_path=prefix_path,
                                     placeholders={"overlay": str(work / "overlay"), "source": str(source_tree)})
            self.reporter.step(f"{recipe.key}: cmake configure + build ({self.jobs} jobs)")
            cmake_build.run_cmake(executor, steps, self.reporter.line, work / "build.log")
            roots["build"] = steps["build"]
            roots["install"] = steps["install"]
        return roots

    # ---- FetchContent routing -------------------------------------------------

    def _discovery_file(self, recipe: Recipe) -> Path | None:
        main = self._main_source(recipe)
        if recipe.fetchcontent is None or main is None:
            return None
        pin = self.cache.expected_sha256(main)
        if pin is None:
            return None
        digest = hashlib.sha256(json.dumps([
            pin, [hashlib.sha256(p.read_bytes()).hexdigest() for p in recipe.patch_files()],
            recipe.fetchcontent.modules, list(recipe.fetchcontent.contents)]).encode()).hexdigest()
        return Path(self.cfg.cache_dir) / "sources" / "fetchcontent" / f"{recipe.key}-{digest[:16]}.json"

    def _known_fetch_sources(self, recipe: Recipe) -> list[Source]:
        """FetchContent sources discovered earlier for exactly this source + patches."""
        file = self._discovery_file(recipe)
        if file is None or not file.is_file():
            return []
        return [Source(**entry["source"]) for entry in json.loads(file.read_text())]

    def _fetchcontent(self, recipe: Recipe, source_tree: Path, work: Path,
                      roots: dict[str, Path]) -> dict[str, Path]:
        if recipe.fetchcontent is None:
            return {}
        routed = fetchcontent.discover(source_tree, recipe.fetchcontent, recipe.file)
        self._remember_discovery(recipe, routed)
        if self.offline:
            gaps = [g for _, s in routed if (g := self.cache.gap(recipe, s))]
            if gaps:
                raise MissingSources(gaps)
        dirs: dict[str, Path] = {}
        for content, source in routed:
            path = self._fetch_one(recipe, source)
            target = work / "fetch" / content
            self._unpack(source, path, target)
            dirs[content] = target
            roots[f"fetch:{content}"] = target
        return dirs

    # ---- fetch-sources ---------------------------------------------------------

    def fetch(self, only: str | None = None) -> FetchReport:
        """Everything the selected recipes need, into the cache (FetchContent deps included)."""
        report = FetchReport()
        for recipe in self.recipes(only):
            paths = self._fetch_all(recipe, report)
            if recipe.fetchcontent is None:
                continue
            known = self._known_fetch_sources(recipe)
            if not known:
                known = self._discover_unbuilt(recipe, paths)
            for source in known:
                self._fetch_one(recipe, source, report)
        return report

    def _discover_unbuilt(self, recipe: Recipe, paths: dict[str, Path]) -> list[Source]:
        """Unpack and patch the main source in a scratch folder only to read its declarations."""
        main = self._main_source(recipe)
        scratch = self.deps_dir / ".work" / f"{recipe.key}.discover"
        if scratch.exists():
            shutil.rmtree(scratch)
        try:
            self._unpack(main, paths[main.id], scratch / "src")
            if recipe.patches:
                apply_patches(scratch / "src", recipe.patch_files())
            routed = fetchcontent.discover(scratch / "src", recipe.fetchcontent, recipe.file)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self._remember_discovery(recipe, routed)
        return [source for _, source in routed]

    def _remember_discovery(self, recipe: Recipe, routed: list[tuple[str, Source]]) -> None:
        file = self._discovery_file(recipe)
        if file is None:
            return
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps([{"content": c, "source": s.__dict__} for c, s in routed], indent=1))
        tmp.replace(file)

    # ---- metadata ----------------------------------------------------------------

    def _metadata(self, recipe: Recipe, named: dict[str, str], facts: dict[str, Any]) -> dict[str, Any]:
        abi = getattr(self.toolchain, "abi", None)
        sources = []
        for source in recipe.sources:
            entry: dict[str, Any] = {"id": source.id, "kind": source.kind}
            if source.kind in ("url", "git"):
                entry.update(url=source.url, sha256=self.cache.expected_sha256(source))
                if source.tag:
                    entry["tag"] = source.tag
            elif source.kind == "deb":
                pin = self.cache.deb_pin(source)
                entry.update(package=source.package, suite=source.suite, arch=source.arch,
                             version=pin.version if pin else None, sha256=pin.sha256 if pin else None,
                             depends=pin.depends if pin else None)
            elif source.kind == "deb-src":
                entry.update(package=source.package, suite=source.suite,
                             version=self.cache.expected_sha256(source))
            else:
                entry.update(path=source.path, digest=named.get(f"source {source.id}"))
            sources.append(entry)
        return {
            "name": recipe.name, "version": recipe.version, "variant": recipe.variant,
            "recipe": str(recipe.file), "toolchain": self.toolchain.name,
            "toolchain_identity": self.identity(), "arch": str(self.toolchain.arch),
            "abi": {"glibc": abi.glibc, "glibcxx": abi.glibcxx} if abi else {},
            "needs": facts.get("needs", {}), "libraries": facts.get("libraries", []),
            "include_dirs": list(recipe.include_dirs), "sources": sources,
            "patches": list(recipe.patches), "key": build_cache.key(named), "inputs": named,
            "built_at": now(),
        }

    def _warn_abi(self, recipe: Recipe, needs: dict[str, str]) -> None:
        abi = getattr(self.toolchain, "abi", None)
        if not abi:
            return
        for symbol, have in (("GLIBC", abi.glibc), ("GLIBCXX", abi.glibcxx)):
            need = needs.get(symbol)
            if need and version_key(need) > version_key(have):
                log.warning("%s needs %s_%s but toolchain %s targets %s: the board must provide it",
                            recipe.key, symbol, need, self.toolchain.name, have)
