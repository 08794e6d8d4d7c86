"""`invoke build`: a plugin project compiled for a board, assembled and gated.

Stages, each skipped when its inputs are unchanged:

1. the engine (ONNX Runtime or TFLite) staged by build-deps for the toolchain
   (a no-op in well under a second when it is up to date);
2. CMake configure + build in the toolchain's container (or on the host with
   --local) into build/plugins/<toolchain>/<Name>/;
3. bundle assembly into build/bundles/<toolchain>/<Name>.vst3: the engine's
   shared libraries found by walking DT_NEEDED, the model, `aarch64-linux`;
4. the ABI gate against the target boards' profiles (the one named, or each of
   the toolchain's default boards: both Elk lines for debian-arm64).

A build whose every input (project files, engine prefix, toolchain, options,
board profile) has the same digest as the last successful one does nothing and
starts no container: it says "up to date". A dry run says which commands would
run and which files would be written, and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from elkbuild.build import cmake
from elkbuild.build.engines import ENGINE_DEPENDENCY, Engine, planned_engine, staged_engine
from elkbuild.build.juce import patched_juce, patched_juce_key
from elkbuild.build.profiles import BoardProfile, get_board_profile
from elkbuild.build.toolchains import OnDemandExecutor, Toolchain, get_toolchain
from elkbuild.bundle.abi_gate import require_deployable
from elkbuild.bundle.assemble import Bundle, assemble_bundle
from elkbuild.bundle.layout import BundleLayout
from elkbuild.deps.build_cache import tree_digest
from elkbuild.deps.runner import DepsRunner
from elkbuild.deps.staging import read_metadata
from elkbuild.errors import BuildError, UsageError
from elkbuild.executor import Executor
from elkbuild.plugin.identity import known_projects, plugins_dir
from elkbuild.plugin.project import PluginProject, load_project
from elkbuild.reporting import Reporter

CONFIGS = cmake.CONFIGS
STAMP = "elkbuild-build.json"

Say = Callable[[str], None]


@dataclass
class PluginBuild:
    project: PluginProject
    toolchain: str
    config: str
    profiles: tuple[str, ...]         # the board profiles the bundle passed (or would be gated against)
    bundle: Bundle | None
    status: str                       # "built" | "up to date" | "would build" (dry run)
    changed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    build_dir: Path | None = None
    destination: Path | None = None   # where the bundle is (or would be)

    def as_json(self) -> dict[str, Any]:
        bundle = self.bundle
        return {"plugin": self.project.identity.name, "toolchain": self.toolchain,
                "config": self.config, "board_profiles": list(self.profiles), "status": self.status,
                "changed": self.changed, "seconds": round(self.seconds, 3),
                "bundle": str(bundle.path) if bundle else None,
                "libraries": [p.name for p in bundle.libraries] if bundle else []}


def bundles_dir(build_dir: Path, toolchain: str) -> Path:
    return build_dir / "bundles" / toolchain


def _inputs(project: PluginProject, engine: Engine, toolchain: Toolchain, config: str,
            profiles: list[BoardProfile]) -> dict[str, str]:
    """Named digests of everything the build's result depends on."""
    return {
        "project": tree_digest(project.root),
        # The runtime is linked from this checkout: a fix there rebuilds every plugin.
        "runtime": tree_digest(cmake.RUNTIME_DIR),
        "engine": f"{engine.package}-{engine.version} {engine.key}",
        "toolchain": str(toolchain.identity()),
        "config": config,
        "board profile": " ".join(_profile_digest(profile) for profile in profiles),
        "elkbuild": hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16],
        "juce": patched_juce_key(),
    }


def _profile_digest(profile: BoardProfile) -> str:
    facts = {"name": profile.name, "arch": profile.arch, "abi": [profile.abi.glibc, profile.abi.glibcxx],
             "system": sorted(profile.system_libraries)}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def _changed(stamp: Path, inputs: dict[str, str], bundle: Path) -> list[str]:
    if not bundle.is_dir():
        return ["no bundle yet"]
    try:
        before = json.loads(stamp.read_text())["inputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return ["no record of an earlier build"]
    return [f"{name} changed" for name in inputs if before.get(name) != inputs[name]]


def build_plugin(project_dir: Path, *, cfg: Any, toolchain: Toolchain,
                 make_executor: Callable[[], Executor], stage_engine: Callable[[str], Path],
                 config: str = "Release", profile_name: str | None = None, jobs: int = 2,
                 force: bool = False, say: Say = lambda _: None, on_line: Say | None = None,
                 dry_run: bool = False) -> PluginBuild:
    """Build one plugin project for `toolchain`; see the module docstring.

    `stage_engine(dependency_name)` returns the staged prefix of the engine (it runs
    build-deps for that one dependency); `make_executor()` gives the toolchain's
    executor and is called only when something must be compiled. With `dry_run`
    the executor must be a dry-run one: nothing is written.
    """
    if config not in CONFIGS:
        raise UsageError(f"build configuration {config!r} is not known",
                         f"choose {' or '.join(CONFIGS)}")
    started = time.monotonic()
    project = load_project(project_dir)
    name = project.identity.name
    names = (profile_name,) if profile_name else toolchain.default_board_profiles
    profiles = [get_board_profile(each) for each in names]
    for profile in profiles:
        if profile.arch != toolchain.arch:
            raise UsageError(f"board profile {profile.name}: an {profile.arch} board, but toolchain "
                             f"{toolchain.name} builds for {toolchain.arch}",
                             "pick a board profile of the toolchain's architecture")

    prefix = stage_engine(ENGINE_DEPENDENCY[project.engine])
    engine = (planned_engine(project.engine, prefix) if dry_run and read_metadata(prefix) is None
              else staged_engine(project.engine, prefix))
    build_dir = Path(cfg.build_dir) / "plugins" / toolchain.name / name
    out_dir = bundles_dir(Path(cfg.build_dir), toolchain.name)
    bundle_path = BundleLayout.named(out_dir, name).path
    stamp = out_dir / f".{name}.{STAMP}"
    inputs = _inputs(project, engine, toolchain, config, profiles)
    changed = ["--force"] if force else _changed(stamp, inputs, bundle_path)
    if not changed:
        return PluginBuild(project, toolchain.name, config, names, _existing(bundle_path, name),
                           "up to date", [], time.monotonic() - started, build_dir, bundle_path)

    verb = "would build" if dry_run else "building"
    say(f"{name} ({toolchain.name}, {config}): {verb}, because: {', '.join(changed)}")
    if not dry_run:
        if {"toolchain changed", "juce changed", "--force"} & set(changed):
            # CMake reads a toolchain file (and its *_INIT flags) only into a new cache.
            shutil.rmtree(build_dir, ignore_errors=True)
        cmake.forget_build_of_other_source(build_dir, project.root)
    executor = make_executor()
    say(f"{name}: cmake configure ({engine.package} {engine.version})")
    juce_dir = patched_juce(executor, Path(cfg.cache_dir))
    executor.run(cmake.configure_argv(project.root, build_dir, engine=engine, model=project.model,
                                      model_data=project.model_data,
                                      model_roles=cmake.write_model_roles(project, build_dir, write=not dry_run),
                                      resample=project.resample,
                                      juce_dir=juce_dir, config=config, ccache=True,
                                      toolchain_args=toolchain.cmake_args(ccache=False,
                                                                          write=not dry_run)),
                 on_line=on_line, hint="see the CMake output above")
    say(f"{name}: compiling ({jobs} jobs)")
    executor.run(cmake.build_argv(build_dir, name, jobs), on_line=on_line,
                 hint="see the compiler output above")
    if dry_run:
        say(f"{name}: would assemble {bundle_path}, gate it against board profile(s) "
            f"{', '.join(names)} and write {stamp}")
        return PluginBuild(project, toolchain.name, config, names, None, "would build",
                           changed, time.monotonic() - started, build_dir, bundle_path)
    built = cmake.built_bundle(build_dir, name, config)
    if not built.is_dir():
        raise BuildError(f"the build left no {built}", f"look at the build output in {build_dir}")

    # Assembled and gated beside its place, moved in only when it passed: a bundle in
    # build/bundles/ is always one deploy may send.
    staging = out_dir / f".{name}.assembling"
    shutil.rmtree(staging, ignore_errors=True)
    say(f"{name}: assembling {bundle_path}")
    # The first profile says which libraries are the board's (the Elk lines agree);
    # the gate then checks the bundle against every profile.
    staged = _assemble_with_sysroot_libraries(built, staging, project, engine, toolchain, profiles[0],
                                              executor, build_dir / "sysroot-libs", say)
    say(f"{name}: ABI gate against board profile(s) {', '.join(names)}")
    try:
        for profile in profiles:
            require_deployable(staged.path, profile)
    except BuildError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = out_dir / f".{name}.previous"
    shutil.rmtree(old, ignore_errors=True)
    if bundle_path.exists():
        bundle_path.rename(old)
    staged.path.rename(bundle_path)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    stamp.write_text(json.dumps({"inputs": inputs, "built_at": time.time()}, indent=1))
    bundle = _existing(bundle_path, name, copied={p.name for p in staged.libraries})
    return PluginBuild(project, toolchain.name, config, names, bundle, "built", changed,
                       time.monotonic() - started, build_dir, bundle_path)


# Copies each named library (following links) from the usual library folders of a
# sysroot; names that are not there are left for the ABI gate to report.
_COPY_FROM_SYSROOT = r"""
sysroot=$1; dest=$2; shift 2
for name do
  for dir in "$sysroot"/usr/lib/*-linux-gnu "$sysroot"/lib/*-linux-gnu "$sysroot"/usr/lib "$sysroot"/lib; do
    if [ -e "$dir/$name" ]; then cp -L "$dir/$name" "$dest/$name"; break; fi
  done
done
"""


def _assemble_with_sysroot_libraries(built: Path, out_dir: Path, project: PluginProject,
                                     engine: Engine, toolchain: Toolchain, profile: BoardProfile,
                                     executor: Executor, extra: Path, say: Say) -> Bundle:
    """Assemble; libraries the plugin needs that are neither the board's nor the
    engine's (Debian's JUCE links libpng, libjpeg, freetype and zlib into every
    target) are taken from the toolchain's sysroot, where the build linked them."""
    library_dirs = engine.library_dirs
    bundle = assemble_bundle(built, out_dir, library_dirs=library_dirs, model=project.model,
                             model_data=project.model_data, profile=profile, executor=executor)
    tried: set[str] = set()
    while toolchain.sysroot and set(bundle.unresolved) - tried:
        wanted = sorted(set(bundle.unresolved) - tried)
        tried.update(wanted)
        say(f"{project.identity.name}: bundling from the sysroot: {', '.join(wanted)}")
        extra.mkdir(parents=True, exist_ok=True)
        executor.run(["sh", "-c", _COPY_FROM_SYSROOT, "copy-from-sysroot", toolchain.sysroot,
                      str(extra), *wanted])
        bundle = assemble_bundle(built, out_dir, library_dirs=[*library_dirs, extra],
                                 model=project.model, model_data=project.model_data,
                                 profile=profile, executor=executor)
    return bundle


def _existing(bundle_path: Path, name: str, copied: set[str] | None = None) -> Bundle:
    """The Bundle of an assembled folder; `copied` narrows libraries to those the
    assembly added (default: every library next to the plugin binary)."""
    layout = BundleLayout(bundle_path, plugin=name)
    binaries = layout.binaries()
    libraries = sorted(p for p in binaries[0].parent.iterdir()
                       if p != binaries[0] and (copied is None or p.name in copied)) if binaries else []
    models = layout.models()
    return Bundle(path=bundle_path, binary=binaries[0] if binaries else bundle_path,
                  libraries=tuple(libraries), model=models[0] if models else None)


def build_plugins(cfg: Any, names: list[str], *, toolchain_name: str | None = None,
                  config: str = "Release", profile_name: str | None = None, local: bool = False,
                  jobs: int = 0, force: bool = False, reporter: Reporter | None = None,
                  host: Executor, dry_run: bool = False) -> list[PluginBuild]:
    """`invoke build`: the named plugin projects (all of them when none is named).

    `host` is this machine's executor: downloads, the Docker engine, the image."""
    toolchain = get_toolchain(toolchain_name or cfg.toolchain, cfg)
    if toolchain.arch != "aarch64":
        raise UsageError(f"toolchain {toolchain.name} builds for this machine, not a board",
                         "use `invoke build-native NAME` for a desktop build")
    projects = plugins_dir(Path(cfg.root), cfg.get("project.plugins_dir"))
    names = names or known_projects(projects)
    if not names:
        raise UsageError(f"no plugin projects in {projects}", "make one with `invoke new-plugin`")
    reporter = reporter or Reporter()
    make_executor = OnDemandExecutor(toolchain, cfg, host, local=local, dry_run=dry_run,
                                     display=Reporter(quiet=reporter.quiet))
    runner = DepsRunner.for_project(cfg, toolchain, make_executor=make_executor,
                                    fetch_executor=host, jobs=jobs or None,
                                    reporter=reporter, dry_run=dry_run)
    builds = []
    with reporter.live():
        for name in names:
            builds.append(build_plugin(projects / name, cfg=cfg, toolchain=toolchain,
                                       make_executor=make_executor, stage_engine=runner.stage,
                                       config=config, profile_name=profile_name,
                                       jobs=jobs or 2, force=force, say=reporter.step,
                                       on_line=reporter.line, dry_run=dry_run))
    return builds
