"""`invoke build`: a plugin project compiled for a board, assembled and gated.

Stages, each skipped when its inputs are unchanged:

1. the engine (ONNX Runtime or TFLite) staged by build-deps for the toolchain
   (a no-op in well under a second when it is up to date);
2. CMake configure + build in the toolchain's container (or on the host with
   --local) into build/plugins/<toolchain>/<Name>/;
3. bundle assembly into build/bundles/<toolchain>/<Name>.vst3: the engine's
   shared libraries found by walking DT_NEEDED, the model, `aarch64-linux`;
4. the ABI gate against the target board's profile.

A build whose every input (project files, engine prefix, toolchain, options,
board profile) has the same digest as the last successful one does nothing and
starts no container: it says "up to date".
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from elkbuild.bundle.abi_gate import require_deployable
from elkbuild.build.profiles import BoardProfile, get_board_profile
from elkbuild.bundle.assemble import Bundle, assemble_bundle
from elkbuild.deps.build_cache import tree_digest
from elkbuild.deps.staging import read_metadata
from elkbuild.errors import BuildError, UsageError
from elkbuild.build.juce import patched_juce, patched_juce_key
from elkbuild.plugin.project import PluginProject, forget_build_of_other_source, load_project
from elkbuild.reporting import Reporter

CONFIGS = ("Release", "Debug")
ENGINE_DEPENDENCY = {"onnx": "onnxruntime", "tflite": "tflite"}
# The engine library the plugin links, by engine: the first staged library whose
# file name starts so (a versioned file such as libonnxruntime.so.1.21.1 included).
ENGINE_LIBRARY_PREFIX = {"onnx": "libonnxruntime.so", "tflite": "libtensorflow-lite.so"}
STAMP = "elkbuild-build.json"

Say = Callable[[str], None]


@dataclass(frozen=True)
class Engine:
    """An engine as build-deps staged it for one toolchain."""

    name: str
    version: str
    prefix: Path
    include_dirs: tuple[Path, ...]
    library: Path
    key: str                # the staged prefix's input digest

    @classmethod
    def from_prefix(cls, engine: str, prefix: Path) -> "Engine":
        meta = read_metadata(prefix)
        if not meta:
            raise BuildError(f"{prefix}: no elkbuild-dep.json", "run `invoke build-deps` again")
        wanted = ENGINE_LIBRARY_PREFIX[engine]
        libraries = sorted(lib for lib in meta.get("libraries", [])
                           if Path(lib).name.startswith(wanted))
        if not libraries:
            raise BuildError(f"{prefix}: the staged {meta.get('name')} has no {wanted}* library",
                             "a static engine build cannot be bundled; use a recipe that stages "
                             "a shared library")
        return cls(name=str(meta["name"]), version=str(meta["version"]), prefix=prefix,
                   include_dirs=tuple(prefix / d for d in meta.get("include_dirs", ["include"])),
                   library=prefix / libraries[0], key=str(meta.get("key", "")))


@dataclass
class PluginBuild:
    project: PluginProject
    toolchain: str
    config: str
    profile: str
    bundle: Bundle | None
    status: str                       # "built" | "up to date"
    changed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    build_dir: Path | None = None

    def as_json(self) -> dict[str, Any]:
        bundle = self.bundle
        return {"plugin": self.project.identity.name, "toolchain": self.toolchain,
                "config": self.config, "board_profile": self.profile, "status": self.status,
                "changed": self.changed, "seconds": round(self.seconds, 3),
                "bundle": str(bundle.path) if bundle else None,
                "libraries": [p.name for p in bundle.libraries] if bundle else []}


def default_profile(toolchain: Any) -> str:
    """The board a toolchain's output is gated against unless --board-profile says."""
    if toolchain.sdk is not None:
        return "elk-0.11" if toolchain.sdk.os_version == "0.11" else "elk-1.x"
    # debian-arm64: the real board it is for (the emulated board provides a superset).
    return "elk-1.x"


def bundles_dir(build_dir: Path, toolchain: str) -> Path:
    return build_dir / "bundles" / toolchain


def _inputs(project: PluginProject, engine: Engine, toolchain: Any, config: str,
            profile: BoardProfile) -> dict[str, str]:
    """Named digests of everything the build's result depends on."""
    return {
        "project": tree_digest(project.root),
        "engine": f"{engine.name}-{engine.version} {engine.key}",
        "toolchain": str(toolchain.identity()),
        "config": config,
        "board profile": _profile_digest(profile),
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


def cmake_configure_argv(project: PluginProject, toolchain: Any, engine: Engine, build_dir: Path,
                         config: str, juce_dir: Path) -> list[str]:
    return ["cmake", "-S", str(project.root), "-B", str(build_dir), "-G", "Ninja",
            *toolchain.cmake_args(),
            f"-DCMAKE_BUILD_TYPE={config}",
            # JUCE's CMake package is a host package (a cross toolchain file confines
            # find_package() to the sysroot), and elkbuild's patched copy of it.
            f"-DJUCE_DIR={juce_dir}",
            f"-DELKBUILD_ENGINE={project.engine}",
            f"-DELKBUILD_ENGINE_INCLUDE_DIRS={';'.join(str(d) for d in engine.include_dirs)}",
            f"-DELKBUILD_ENGINE_LIBRARY={engine.library}",
            f"-DELKBUILD_MODEL={project.model}"]


def build_plugin(project_dir: Path, *, cfg: Any, toolchain: Any, make_executor: Callable[[], Any],
                 stage_engine: Callable[[str], Path], config: str = "Release",
                 profile_name: str | None = None, jobs: int = 2, force: bool = False,
                 say: Say = lambda _: None, on_line: Say | None = None) -> PluginBuild:
    """Build one plugin project for `toolchain`; see the module docstring.

    `stage_engine(dependency_name)` returns the staged prefix of the engine (it runs
    build-deps for that one dependency); `make_executor()` gives the toolchain's
    executor and is called only when something must be compiled.
    """
    if config not in CONFIGS:
        raise UsageError(f"--config {config!r}: not a build configuration",
                         f"choose {' or '.join(CONFIGS)}")
    started = time.monotonic()
    project = load_project(project_dir)
    name = project.identity.name
    profile_name = profile_name or default_profile(toolchain)
    profile = get_board_profile(profile_name)
    if profile.arch != toolchain.arch:
        raise UsageError(f"--board-profile {profile_name}: an {profile.arch} board, but toolchain "
                         f"{toolchain.name} builds for {toolchain.arch}",
                         "pick a board profile of the toolchain's architecture")

    engine = Engine.from_prefix(project.engine, stage_engine(ENGINE_DEPENDENCY[project.engine]))
    build_dir = Path(cfg.build_dir) / "plugins" / toolchain.name / name
    out_dir = bundles_dir(Path(cfg.build_dir), toolchain.name)
    bundle_path = out_dir / f"{name}.vst3"
    stamp = out_dir / f".{name}.{STAMP}"
    inputs = _inputs(project, engine, toolchain, config, profile)
    changed = ["--force"] if force else _changed(stamp, inputs, bundle_path)
    if not changed:
        return PluginBuild(project, toolchain.name, config, profile_name, _existing(bundle_path, name),
                           "up to date", [], time.monotonic() - started, build_dir)

    say(f"{name} ({toolchain.name}, {config}): building, because: {', '.join(changed)}")
    if {"toolchain changed", "juce changed", "--force"} & set(changed):
        # CMake reads a toolchain file (and its *_INIT flags) only into a new cache.
        shutil.rmtree(build_dir, ignore_errors=True)
    forget_build_of_other_source(build_dir, project.root)
    executor = make_executor()
    say(f"{name}: cmake configure ({engine.name} {engine.version})")
    juce_dir = patched_juce(executor, Path(cfg.cache_dir))
    executor.run(cmake_configure_argv(project, toolchain, engine, build_dir, config, juce_dir),
                 on_line=on_line, hint="see the CMake output above")
    say(f"{name}: compiling ({jobs} jobs)")
    executor.run(["cmake", "--build", str(build_dir), "--target", f"{name}_VST3",
                  "--parallel", str(jobs)], on_line=on_line, hint="see the compiler output above")
    built = build_dir / f"{name}_artefacts" / config / "VST3" / f"{name}.vst3"
    if not built.is_dir():
        raise BuildError(f"the build left no {built}", f"look at the build output in {build_dir}")

    # Assembled and gated beside its place, moved in only when it passed: a bundle in
    # build/bundles/ is always one deploy may send.
    staging = out_dir / f".{name}.assembling"
    shutil.rmtree(staging, ignore_errors=True)
    say(f"{name}: assembling {bundle_path}")
    staged = _assemble_with_sysroot_libraries(built, staging, project, engine, toolchain, profile,
                                              executor, build_dir / "sysroot-libs", say)
    say(f"{name}: ABI gate against board profile {profile_name}")
    try:
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
    return PluginBuild(project, toolchain.name, config, profile_name, bundle, "built", changed,
                       time.monotonic() - started, build_dir)


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
                                     engine: Engine, toolchain: Any, profile: BoardProfile,
                                     executor: Any, extra: Path, say: Say) -> Bundle:
    """Assemble; libraries the plugin needs that are neither the board's nor the
    engine's (Debian's JUCE links libpng, libjpeg, freetype and zlib into every
    target) are taken from the toolchain's sysroot, where the build linked them."""
    library_dirs = [engine.prefix / "lib"]
    bundle = assemble_bundle(built, out_dir, library_dirs=library_dirs, model=project.model,
                             profile=profile, executor=executor)
    tried: set[str] = set()
    while toolchain.sysroot and set(bundle.unresolved) - tried:
        wanted = sorted(set(bundle.unresolved) - tried)
        tried.update(wanted)
        say(f"{project.identity.name}: bundling from the sysroot: {', '.join(wanted)}")
        extra.mkdir(parents=True, exist_ok=True)
        executor.run(["sh", "-c", _COPY_FROM_SYSROOT, "copy-from-sysroot", toolchain.sysroot,
                      str(extra), *wanted])
        bundle = assemble_bundle(built, out_dir, library_dirs=[*library_dirs, extra],
                                 model=project.model, profile=profile, executor=executor)
    return bundle


def _existing(bundle_path: Path, name: str, copied: set[str] | None = None) -> Bundle:
    """The Bundle of an assembled folder; `copied` narrows libraries to those the
    assembly added (default: every library next to the plugin binary)."""
    binaries = sorted(bundle_path.glob(f"Contents/*-linux/{name}.so"))
    libraries = sorted(p for p in binaries[0].parent.iterdir()
                       if p != binaries[0] and (copied is None or p.name in copied)) if binaries else []
    models = sorted((bundle_path / "Contents" / "Resources").glob("*"))
    return Bundle(path=bundle_path, binary=binaries[0] if binaries else bundle_path,
                  libraries=tuple(libraries), model=models[0] if models else None)


def build_plugins(cfg: Any, names: list[str], *, toolchain_name: str | None = None,
                  config: str = "Release", profile_name: str | None = None, local: bool = False,
                  jobs: int = 0, force: bool = False, reporter: Any = None) -> list[PluginBuild]:
    """`invoke build`: the named plugin projects (all of them when none is named)."""
    from elkbuild.deps import commands
    from elkbuild.plugin.identity import known_projects, plugins_dir
    from elkbuild.build.toolchains import get_toolchain

    toolchain = get_toolchain(toolchain_name or cfg.toolchain, cfg)
    if toolchain.arch != "aarch64":
        raise UsageError(f"--toolchain {toolchain.name} builds for this machine, not a board",
                         "use `invoke build-native NAME` for a desktop build")
    projects = plugins_dir(Path(cfg.root), cfg.get("project.plugins_dir"))
    names = names or known_projects(projects)
    if not names:
        raise UsageError(f"no plugin projects in {projects}", "make one with `invoke new-plugin`")
    reporter = reporter or Reporter()
    executors: list[Any] = []

    def make_executor() -> Any:
        """One executor for the whole run, made only when something must be built:
        the toolchain's image is built first if it is missing (a no-op when it is
        up to date), so `invoke build` works on a machine that has none yet."""
        if not executors:
            if not local:
                from elkbuild.docker.commands import build_image, image_toolchain

                build_image(cfg, image_toolchain(toolchain.name, cfg=cfg),
                            display=Reporter(quiet=getattr(reporter, "quiet", False)))
            executors.append(toolchain.executor(cfg, local=local))
        return executors[0]

    runner = commands.make_runner(cfg, toolchain.name, local=local, jobs=jobs, reporter=reporter,
                                  make_executor=make_executor)

    def stage_engine(dependency: str) -> Path:
        (result,) = runner.build(only=dependency)
        return result.prefix

    builds = []
    with reporter.live():
        for name in names:
            builds.append(build_plugin(projects / name, cfg=cfg, toolchain=toolchain,
                                       make_executor=make_executor, stage_engine=stage_engine,
                                       config=config, profile_name=profile_name,
                                       jobs=jobs or 2, force=force, say=reporter.step,
                                       on_line=reporter.line))
    return builds
