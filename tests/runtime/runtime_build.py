"""Build runtime/ (libelkrt, its ctest tests and elkrt_stream) once per engine
configuration under the elkbuild cache; a second build is a no-op for ninja.

onnx: the PyPI wheel's ONNX Runtime with Debian's headers, as elkbuild links it
natively. tflite: Debian sid's libtensorflow-lite (it exports the TFLite C API)
from elkbuild's sid tree; its programs run inside that tree (run_in_tree)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from elkbuild.executor import LocalExecutor
from elkbuild.locks import locked

try:
    from elkbuild.build.engines import onnxruntime_engine
except ImportError:  # before the engines moved out of elkbuild.plugin.project
    from elkbuild.plugin.project import onnxruntime_engine

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "runtime"


@dataclass(frozen=True)
class RuntimeBuild:
    build_dir: Path
    stream_tool: Path     # elkrt_stream
    engine: object        # elkbuild's engine description (library, include_dirs, link_flags)
    configured: bool      # this call ran cmake's configure step
    seconds: float
    tflite_tree: object = None   # elkbuild.build.tflite_runtime.TfliteRuntime for tflite


def build_runtime(cache_dir: Path, jobs: int = 2, engine_name: str = "onnx") -> RuntimeBuild:
    tree = None
    if engine_name == "onnx":
        engine = onnxruntime_engine(LocalExecutor(), cache_dir)
        options = ["-DELKRT_WITH_ONNX=ON", f"-DELKRT_ONNX_INCLUDE_DIR={engine.include_dirs[0]}",
                   f"-DELKRT_ONNX_LIBRARY={engine.library}"]
    else:
        from elkbuild.build.tflite_runtime import ensure_runtime, tflite_engine

        tree = ensure_runtime(LocalExecutor(), cache_dir)
        engine = tflite_engine(tree)
        # The ctest cases are engine-free and run in the onnx build.
        # Its programs run in the sid tree, which has no libsamplerate.
        options = ["-DELKRT_WITH_TFLITE=ON", "-DELKRT_TESTS=OFF", "-DELKRT_WITH_RESAMPLING=OFF",
                   f"-DELKRT_TFLITE_INCLUDE_DIR={engine.include_dirs[0]}",
                   f"-DELKRT_TFLITE_LIBRARY={engine.library}",
                   f"-DCMAKE_EXE_LINKER_FLAGS={' '.join(engine.link_flags)}"]
    generator = "Ninja" if shutil.which("ninja") else "Unix Makefiles"
    compiler = shutil.which("c++") or "c++"
    key = hashlib.sha256("\n".join([str(RUNTIME), generator, compiler, *options]).encode()).hexdigest()[:12]
    build_dir = cache_dir / "runtime-builds" / f"elkrt-{engine_name}-{key}"
    started = time.monotonic()
    configured = False
    with locked(cache_dir / "runtime-builds" / f".elkrt-{engine_name}-{key}.lock"):
        if not (build_dir / "CMakeCache.txt").is_file():
            configured = True
            _run(["cmake", "-S", str(RUNTIME), "-B", str(build_dir), "-G", generator,
                  "-DCMAKE_BUILD_TYPE=Release", *options])
        # Niced: the machine's two cores are shared with other builds.
        _run(["nice", "-n", "10", "cmake", "--build", str(build_dir), "-j", str(jobs)])
    return RuntimeBuild(build_dir, build_dir / "elkrt_stream", engine, configured,
                        time.monotonic() - started, tree)


def run_in_tree(build: RuntimeBuild, argv: list[str], folders: list[Path],
                timeout: float = 300) -> subprocess.CompletedProcess:
    """argv inside the tflite build's sid tree, each folder bound at its own path."""
    from elkbuild.build.tflite_runtime import INSIDE, run_inside

    binds = {folder: str(folder.resolve()).lstrip("/") for folder in {build.build_dir, *folders}}
    mapped = []
    for word in argv:
        for folder, relative in binds.items():
            resolved = str(folder.resolve())
            if word == resolved or word.startswith(resolved + "/"):
                word = f"{INSIDE}/{relative}{word[len(resolved):]}"
                break
        mapped.append(word)
    done = run_inside(LocalExecutor(), build.tflite_tree, mapped, binds, timeout=timeout, check=False)
    return subprocess.CompletedProcess(mapped, done.returncode, done.stdout, done.stderr)


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")


@pytest.fixture(scope="module")
def onnx_runtime_build() -> RuntimeBuild:
    """The onnx configuration of runtime/ (ctest cases, elkrt_stream, elkrt_features),
    built or found up to date; a missing compiler or engine fails in CI."""
    from conftest import require_real_part
    from elkbuild.config import load_config
    from elkbuild.errors import ElkbuildError

    require_real_part(shutil.which("cmake") is not None and shutil.which("c++") is not None,
                      "cmake and a host C++ compiler", "apt-get install cmake g++ ninja-build")
    try:
        build = build_runtime(load_config(REPO).cache_dir)
    except ElkbuildError as error:
        require_real_part(False, "ONNX Runtime (library and headers)", str(error))
    print(f"runtime build: {build.seconds:.1f} s ({'configured and built' if build.configured else 'up to date'})")
    return build
