"""Inference engines a plugin links: one `Engine` type for the native and the cross build.

A cross build links the engine build-deps staged for the toolchain
(`staged_engine`); a native build links the PyPI wheel's ONNX Runtime with
Debian's headers (`onnxruntime_engine`) or the TensorFlow Lite tree of
build/tflite_runtime.py. Headers come from Debian -dev packages unpacked once
into the cache.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path

from elkbuild.deps.staging import read_metadata
from elkbuild.errors import BuildError, ToolMissing
from elkbuild.executor import Executor

ENGINE_DEPENDENCY = {"onnx": "onnxruntime", "tflite": "tflite"}
"""The build-deps dependency that provides each engine of plugin.yaml."""
ENGINE_LIBRARY_PREFIXES = {"onnx": ("libonnxruntime.so",),
                           "tflite": ("libLiteRtRuntimeCApi.so", "libtensorflow-lite.so")}
"""The engine library the plugin links, by engine: the first staged library whose
file name starts with one of these, in this order (a versioned file such as
libonnxruntime.so.1.21.1 included). TFLite is LiteRT's C API library (the default
recipe) or Debian's libtensorflow-lite (the `debian` and `source` variants)."""
ENGINE_LIBRARIES = tuple(name for names in ENGINE_LIBRARY_PREFIXES.values() for name in names)
"""Every engine library a bundle may carry: their calls can be told apart (rt-check)."""


@dataclass(frozen=True)
class Engine:
    """The inference engine a build links: its shared library (copied into the bundle
    under its file name, which must be its SONAME, except for ONNX Runtime, see the
    template), include directories and extra linker flags; a staged engine also
    knows its dependency's name, version, prefix and input digest."""

    engine: str                        # onnx | tflite, as plugin.yaml names it
    library: Path
    include_dirs: tuple[Path, ...]
    link_flags: tuple[str, ...] = ()
    package: str = ""                  # the staged dependency, e.g. onnxruntime
    version: str = ""
    prefix: Path | None = None         # the staged prefix (cross builds)
    key: str = ""                      # the staged prefix's input digest

    @property
    def library_dirs(self) -> list[Path]:
        """Where bundling looks for the engine's libraries."""
        return [self.prefix / "lib"] if self.prefix is not None else [self.library.parent]


def staged_engine(engine: str, prefix: Path) -> Engine:
    """The engine build-deps staged in `prefix` (its elkbuild-dep.json says what is there)."""
    meta = read_metadata(prefix)
    if not meta:
        raise BuildError(f"{prefix}: no elkbuild-dep.json", "run `invoke build-deps` again")
    wanted = ENGINE_LIBRARY_PREFIXES[engine]
    staged = meta.get("libraries", [])
    libraries = [lib for name in wanted for lib in sorted(staged) if Path(lib).name.startswith(name)]
    if not libraries:
        raise BuildError(f"{prefix}: the staged {meta.get('name')} has no "
                         f"{' or '.join(name + '*' for name in wanted)} library",
                         "a static engine build cannot be bundled; use a recipe that stages "
                         "a shared library")
    return Engine(engine=engine, library=prefix / libraries[0],
                  include_dirs=tuple(prefix / d for d in meta.get("include_dirs", ["include"])),
                  package=str(meta["name"]), version=str(meta["version"]), prefix=prefix,
                  key=str(meta.get("key", "")))


def planned_engine(engine: str, prefix: Path) -> Engine:
    """The engine build-deps would stage in `prefix` (a dry run, before it exists)."""
    return Engine(engine=engine, library=prefix / "lib" / ENGINE_LIBRARY_PREFIXES[engine][0],
                  include_dirs=(prefix / "include",), package=ENGINE_DEPENDENCY[engine],
                  version="not staged yet", prefix=prefix)


def onnxruntime_wheel_library() -> Path:
    """libonnxruntime.so.<V> from the installed onnxruntime Python package."""
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise ToolMissing("onnxruntime (Python package)", "pip install onnxruntime")
    for location in spec.submodule_search_locations:
        found = sorted((Path(location) / "capi").glob("libonnxruntime.so.*"))
        if found:
            return found[-1]
    raise BuildError("the onnxruntime package carries no capi/libonnxruntime.so.*",
                     "reinstall onnxruntime from PyPI")


def debian_headers(executor: Executor, cache_dir: Path, packages: tuple[str, ...],
                   suite: str, arch: str) -> Path:
    """usr/include of Debian -dev packages, unpacked once into the cache (keyed by the
    exact versions apt's index gives), through a private apt root."""
    from elkbuild.deps.debian import AptRoot

    apt = AptRoot(cache_dir, suite, arch)
    if not apt.has_lists:
        apt.update(executor)
    else:
        apt.prepare()
    pins = [apt.resolve(executor, package) for package in packages]
    key = "+".join(f"{pin.package}_{pin.version}" for pin in pins).replace(":", "%3a")
    staged = cache_dir / "engines" / f"{key}-{arch}"
    if (staged / ".complete").is_file():
        return staged / "usr" / "include"
    partial = staged.with_name(staged.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for pin in pins:
        deb = apt.download(executor, pin, cache_dir / "engines" / "debs")
        executor.run(["dpkg-deb", "-x", str(deb), str(partial)])
    (partial / ".complete").touch()
    shutil.rmtree(staged, ignore_errors=True)
    partial.rename(staged)
    return staged / "usr" / "include"


def onnxruntime_headers(executor: Executor, cache_dir: Path, suite: str = "trixie",
                        arch: str = "amd64") -> Path:
    """ONNX Runtime's C/C++ headers from Debian's libonnxruntime-dev. An older header
    API version is served by a newer library (the PyPI wheel's)."""
    include = debian_headers(executor, cache_dir, ("libonnxruntime-dev",), suite, arch) / "onnxruntime"
    if not (include / "onnxruntime_cxx_api.h").is_file():
        raise BuildError(f"libonnxruntime-dev of {suite} holds no {include}/onnxruntime_cxx_api.h",
                         "check the package's contents with `dpkg -c`")
    return include


def tflite_headers(executor: Executor, cache_dir: Path, suite: str = "sid",
                   arch: str = "arm64") -> Path:
    """TensorFlow Lite's headers (with the FlatBuffers headers they include) from Debian."""
    include = debian_headers(executor, cache_dir, ("libtensorflow-lite-dev", "libflatbuffers-dev"),
                             suite, arch)
    if not (include / "tensorflow" / "lite" / "interpreter.h").is_file():
        raise BuildError(f"libtensorflow-lite-dev of {suite} holds no tensorflow/lite/interpreter.h",
                         "check the package's contents with `dpkg -c`")
    return include


def onnxruntime_engine(executor: Executor, cache_dir: Path) -> Engine:
    """The PyPI wheel's ONNX Runtime with Debian's headers."""
    return Engine("onnx", onnxruntime_wheel_library(), (onnxruntime_headers(executor, cache_dir),))
