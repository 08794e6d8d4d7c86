"""A Debian amd64 tree that holds TensorFlow Lite, for native tests of tflite plugins.

Debian ships TensorFlow Lite as a C++ library (libtensorflow-lite2.14.1) only in
sid, built against a newer glibc and abseil than the bookworm host has. So the
library is not installed on the host: mmdebstrap makes a small sid userland with
it (glibc, libstdc++, abseil and the -dev package's headers and .so link), the
plugin is compiled on the host against that tree (it needs nothing newer than the
host's glibc itself), and the plugin's host runs *inside* the tree (chroot), where
the loader finds sid's glibc and libraries.

The tree is cached as $ELKBUILD_CACHE/tflite-runtime-<key>/, keyed by the recipe
and the exact package version apt's sid index gives; it is built in a .partial
directory under a lock and renamed into place, so a failed build leaves nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from elkbuild.build.engines import Engine
from elkbuild.deps.debian import mmdebstrap_argv
from elkbuild.errors import BuildError
from elkbuild.executor import Completed, Executor, require
from elkbuild.locks import locked

log = logging.getLogger("elkbuild.tflite")

LIBRARY_PACKAGE = "libtensorflow-lite2.14.1"
TREE_LIBRARY = "libtensorflow-lite.so"
"""What a plugin built against the tree needs (DT_NEEDED starts so): it runs inside the tree."""
RECIPE = {
    "suite": "sid",
    "architecture": "amd64",
    "variant": "essential",
    # The -dev package brings the headers, libtensorflow-lite.so and FlatBuffers'
    # headers for exactly the library in the tree.
    # JUCE plugins built against Debian's JUCE also need its graphics libraries
    # (juce_graphics links libpng, libjpeg and FreeType even in a headless plugin).
    "packages": [LIBRARY_PACKAGE, "libtensorflow-lite-dev", "libstdc++6",
                 "libpng16-16t64", "libjpeg62-turbo", "libfreetype6", "zlib1g"],
    "dpkg_excludes": ["/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*",
                      "/usr/share/info/*"],
    # A mirror or snapshot of sid may be older than its Release file's Valid-Until
    # (one week); signatures are still checked against Debian's keyring.
    "apt_options": ['Acquire::Check-Valid-Until "false"'],
}
INSIDE = Path("/elk")    # where run_inside binds host folders into the tree

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TfliteRuntime:
    root: Path            # the sid tree
    library: Path         # <root>/usr/lib/x86_64-linux-gnu/libtensorflow-lite.so.<V>
    include: Path         # <root>/usr/include (tensorflow/lite/..., flatbuffers/...)
    version: str          # the Debian version of LIBRARY_PACKAGE

    @property
    def library_dir(self) -> Path:
        return self.library.parent


def runtime_key(version: str) -> str:
    digest = hashlib.sha256(json.dumps({"recipe": RECIPE, "version": version},
                                       sort_keys=True).encode())
    return digest.hexdigest()[:16]


def library_version(executor: Executor, cache_dir: Path) -> str:
    """The version of LIBRARY_PACKAGE in sid's amd64 index (a private apt root)."""
    from elkbuild.deps.debian import AptRoot

    apt = AptRoot(cache_dir, RECIPE["suite"], RECIPE["architecture"])
    if not apt.has_lists:
        apt.update(executor)
    else:
        apt.prepare()
    return apt.resolve(executor, LIBRARY_PACKAGE).version


def _describe(root: Path, version: str) -> TfliteRuntime:
    libdir = root / "usr" / "lib" / "x86_64-linux-gnu"
    found = sorted(p for p in libdir.glob("libtensorflow-lite.so.*") if not p.is_symlink())
    if not found:
        raise BuildError(f"{root} holds no usr/lib/x86_64-linux-gnu/libtensorflow-lite.so.*",
                         f"remove {root} so it is made again")
    include = root / "usr" / "include"
    if not (include / "tensorflow" / "lite" / "interpreter.h").is_file():
        raise BuildError(f"{root} holds no usr/include/tensorflow/lite/interpreter.h",
                         f"remove {root} so it is made again")
    return TfliteRuntime(root, found[0], include, version)


def ensure_runtime(executor: Executor, cache_dir: Path,
                   progress: Progress | None = None) -> TfliteRuntime:
    """The cached sid tree with TensorFlow Lite, made with mmdebstrap if missing."""
    say = progress or (lambda line: log.info("%s", line))
    _require_root()
    version = library_version(executor, cache_dir)
    target = cache_dir / f"tflite-runtime-{runtime_key(version)}"
    with locked(cache_dir / ".tflite-runtime.lock"):
        if not target.is_dir():
            require("mmdebstrap", "apt-get install mmdebstrap")
            _build(executor, target, version, say)
    return _describe(target, version)


def _require_root() -> None:
    """The tree is made with mmdebstrap --mode=root and entered with unshare and chroot."""
    if os.geteuid() != 0:
        raise BuildError("native TensorFlow Lite needs root: its Debian sid tree is made with "
                         "mmdebstrap --mode=root and entered with chroot",
                         "run `sudo ./elk build-native NAME`")


def _build(executor: Executor, target: Path, version: str, say: Progress) -> None:
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    recipe = RECIPE
    say(f"making a Debian {recipe['suite']} {recipe['architecture']} tree with "
        f"{LIBRARY_PACKAGE} {version} (mmdebstrap, once)")
    try:
        executor.run(mmdebstrap_argv(recipe, partial), on_line=lambda line: say(f"  {line}"),
                     hint=f"mmdebstrap needs Debian's archive (deb.debian.org) and "
                          f"{LIBRARY_PACKAGE} in {recipe['suite']}")
        _describe(partial, version)
        (partial / "etc" / "elkbuild-tflite-runtime.json").write_text(
            json.dumps({"recipe": recipe, "version": version, "key": target.name}, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    partial.rename(target)


# Fixed text: the bind pairs and the command reach it as arguments ("$@"), never
# formatted into it. Pairs come first, then "--", then the chroot's root and argv.
_BIND_THEN_CHROOT = ('while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 97; shift 2; done; '
                     'shift; exec chroot "$@"')


def run_inside(executor: Executor, runtime: TfliteRuntime, argv: Sequence[str],
               binds: dict[Path, str], *, timeout: float | None = None,
               check: bool = True) -> Completed:
    """Run argv in the tree (its glibc and libraries), in a private mount namespace
    (`unshare --mount`) with /proc and /dev and each host path of `binds` mounted at
    the given path below /elk. The host's own mounts are never touched; the mounts go
    away with the namespace when the command ends."""
    places = {}
    for source, relative in binds.items():
        if relative.startswith("/") or ".." in Path(relative).parts:
            raise BuildError(f"bind target {relative!r} must be a path below {INSIDE}")
        places[source] = INSIDE / relative
    return executor.run(_wrapped(runtime, argv, places), timeout=timeout, check=check)


def _wrapped(runtime: TfliteRuntime, argv: Sequence[str], places: dict[Path, Path]) -> list[str]:
    """unshare + bind mounts + chroot argv for running argv in the tree; `places`
    maps host paths to absolute paths inside the tree."""
    require("unshare", "apt-get install util-linux")
    pairs: list[str] = []
    for point in ("proc", "dev"):
        (runtime.root / point).mkdir(exist_ok=True)
        pairs += [f"/{point}", str(runtime.root / point)]
    for source, inside in places.items():
        if not source.exists():
            raise BuildError(f"{source} does not exist; nothing to mount at {inside} in {runtime.root}")
        mount_point = runtime.root / inside.relative_to("/")
        if source.is_dir():
            mount_point.mkdir(parents=True, exist_ok=True)
        else:
            mount_point.parent.mkdir(parents=True, exist_ok=True)
            mount_point.touch()
        pairs += [str(source.resolve()), str(mount_point)]
    return ["unshare", "--mount", "--propagation", "private",
            "sh", "-c", _BIND_THEN_CHROOT, "elk-bind", *pairs, "--", str(runtime.root), *argv]


def tflite_engine(runtime: TfliteRuntime) -> Engine:
    """What build_native links a tflite plugin against: the tree's library and headers.
    The library's own dependencies (sid's abseil, glibc >= 2.38) are not on the host;
    ld leaves them to the loader (a shared object may keep undefined symbols of the
    libraries it links), and only the plugin's own references count against the
    host's glibc, so the plugin loads wherever the tree's libraries are."""
    return Engine("tflite", runtime.library, (runtime.include,), ("-Wl,--allow-shlib-undefined",))


@dataclass
class TreeExecutor(Executor):
    """An Executor that runs the programs of the given host folders inside the tree
    (run_inside), each folder bound at its own path so argv and LD_PRELOAD need no
    rewriting; every other command (compilers, `g++ --version`) runs on the host
    through `host`. With it, rt_check and process_file run elkbuild's bookworm-built
    VST3 host against the tree's glibc and TensorFlow Lite unchanged."""

    runtime: TfliteRuntime | None = None
    host: Executor | None = None
    folders: tuple[Path, ...] = ()
    name: str = "tflite-tree"

    def _inside(self, program: str) -> bool:
        path = Path(program)
        return path.is_absolute() and any(path.is_relative_to(folder) for folder in self.folders)

    def _run(self, argv, *, cwd, env, input, timeout, on_line):
        assert self.runtime is not None and self.host is not None
        if not self._inside(argv[0]):
            return self.host._run(argv, cwd=cwd, env=env, input=input, timeout=timeout,
                                  on_line=on_line)
        # The environment a caller adds (LD_PRELOAD) is set inside the chroot only,
        # so unshare, sh and chroot on the host side never load the host's interposer.
        inner = ["env", *(f"{key}={value}" for key, value in (env or {}).items()), *argv]
        wrapped = _wrapped(self.runtime, inner, {folder: folder for folder in self.folders})
        return self.host._run(wrapped, cwd=cwd, env=None, input=input, timeout=timeout,
                              on_line=on_line)
