"""TensorFlow Lite (its C API) against ONNX Runtime on the same model, through libelkrt:
the time elkrt's inline mode takes per host block (it runs the model on the calling
thread), for the example saturator in both formats (elkbuild.plugin.example_models
makes them from the same weights), and the size of each engine library.

Natively (x86_64): TFLite is Debian sid's libtensorflow-lite in elkbuild's sid tree
(no x86_64 LiteRT exports the C API), ONNX Runtime the PyPI wheel's. The board's
libraries (aarch64: LiteRT 1.4.0's C API library, ONNX Runtime 1.21.1) are listed
by size from the source cache. Unpaced runs, as fast as the engine goes; the two
outputs must agree. For comparison, the DAFx 2022 paper lists 8.8 MiB for
libtensorflow-lite.a 2.4.1 and 12 MiB for libonnxruntime.so 1.7.

    .venv/bin/python bench/tflite_vs_onnxruntime.py [--seconds 10] [--frames 64,256,1024]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "runtime"))

from elkbuild.config import load_config  # noqa: E402
from elkbuild.deps.lockfile import LOCK_FILE_NAME, PinFile  # noqa: E402
from elkbuild.deps.recipes import BUILTIN_RECIPES, load_recipes, select  # noqa: E402
from elkbuild.deps.source_cache import SourceCache  # noqa: E402
from elkbuild.plugin.example_models import saturator_onnx_bytes, saturator_tflite_bytes  # noqa: E402
from elkbuild.plugin.models import read_model  # noqa: E402
from elkbuild.plugin.roles import assign_roles, roles_text  # noqa: E402
from runtime_build import build_runtime, run_in_tree  # noqa: E402

MIB = 1 << 20
BOARD_LIBRARIES = {"tflite": "ai_edge_litert/libLiteRtRuntimeCApi.so", "onnxruntime": "onnxruntime/capi/"}


def stream(build, engine: str, model: Path, signal: Path, folder: Path, block: int,
           rate: int) -> tuple[np.ndarray, np.ndarray]:
    """elkrt_stream inline over `signal`: per-block seconds and the output."""
    roles = folder / f"{model.name}.roles"
    roles.write_text(roles_text(assign_roles(read_model(model))))
    timings, output = folder / f"{engine}.timings", folder / f"{engine}.f32"
    argv = [str(build.stream_tool), "--engine", engine, "--model", str(model), "--roles", str(roles),
            "--input", str(signal), "--output", str(output), "--block", str(block),
            "--rate", str(rate), "--mode", "inline", "--timings", str(timings)]
    if build.tflite_tree is None:
        done = subprocess.run(argv, capture_output=True, text=True)
    else:  # sid's library needs sid's glibc: the tool runs inside the tree
        done = run_in_tree(build, argv, [folder])
    if done.returncode != 0:
        raise SystemExit(f"elkrt_stream ({engine}) failed: {done.stderr.strip()[-2000:]}")
    blocks = [float(seconds) for kind, seconds in (line.split() for line in timings.read_text().splitlines())
              if kind == "block"]
    return np.array(blocks), np.fromfile(output, np.float32)


def board_library_sizes(cfg) -> dict[str, str]:
    """Each engine library the debian-arm64 bundle carries, sized inside its cached wheel."""
    cache = SourceCache(cfg.cache_dir, PinFile(cfg.root / LOCK_FILE_NAME))
    sizes = {}
    for recipe in select(load_recipes([BUILTIN_RECIPES]), "debian-arm64"):
        source = recipe.source("wheel")
        sha = cache.expected_sha256(source)
        wheel = cache.cached_wheel(sha) if sha else None
        label = f"{recipe.name} {recipe.version} aarch64"
        if wheel is None:
            sizes[label] = "not in the source cache (elk fetch-sources --toolchain debian-arm64)"
            continue
        with zipfile.ZipFile(wheel) as archive:
            (info,) = [i for i in archive.infolist() if i.filename.startswith(BOARD_LIBRARIES[recipe.name])
                       and ".so" in i.filename and not i.filename.endswith(".py")
                       and "providers" not in i.filename and "pybind" not in i.filename]
        sizes[label] = f"{info.file_size / MIB:6.2f} MiB  {Path(info.filename).name}"
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--frames", default="64,256,1024", help="model frame sizes (host block = frame)")
    parser.add_argument("--rate", type=int, default=48000)
    args = parser.parse_args()

    cfg = load_config(REPO)
    builds = {"onnx": build_runtime(cfg.cache_dir, engine_name="onnx"),
              "tflite": build_runtime(cfg.cache_dir, engine_name="tflite")}
    print(f"saturator, {args.seconds:g} s at {args.rate} Hz, inline, unpaced; per-block time on this machine")
    print(f"  {'frame':>5}  {'deadline':>9}  {'TFLite p50':>11}  {'ORT p50':>9}  {'TFLite/ORT':>10}  "
          f"{'TFLite p99':>11}  {'ORT p99':>9}  {'TFLite/ORT':>10}  max |diff|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        signal = folder / "in.f32"
        rng = np.random.default_rng(1)
        (0.8 * rng.standard_normal(int(args.seconds * args.rate))).astype(np.float32).tofile(signal)
        for frame in (int(f) for f in args.frames.split(",")):
            models = {"onnx": folder / "saturator.onnx", "tflite": folder / "saturator.tflite"}
            models["onnx"].write_bytes(saturator_onnx_bytes(frame=frame))
            models["tflite"].write_bytes(saturator_tflite_bytes(frame=frame))
            runs = {engine: stream(builds[engine], engine, models[engine], signal, folder, frame, args.rate)
                    for engine in ("tflite", "onnx")}
            (t_blocks, t_out), (o_blocks, o_out) = runs["tflite"], runs["onnx"]
            t50, o50 = np.percentile(t_blocks, 50) * 1e6, np.percentile(o_blocks, 50) * 1e6
            t99, o99 = np.percentile(t_blocks, 99) * 1e6, np.percentile(o_blocks, 99) * 1e6
            diff = float(np.max(np.abs(t_out - o_out)))
            print(f"  {frame:>5}  {frame / args.rate * 1e6:7.0f}us  {t50:9.1f}us  {o50:7.1f}us  "
                  f"{t50 / o50:9.2f}x  {t99:9.1f}us  {o99:7.1f}us  {t99 / o99:9.2f}x  {diff:.1e}")
            if diff > 1e-4:
                print("  the two engines disagree: the figures above compare different work")
                return 1
    print("engine libraries")
    for engine, build in builds.items():
        library = Path(build.engine.library).resolve()
        print(f"  {engine + ' x86_64 (this run)':<52} {library.stat().st_size / MIB:6.2f} MiB  {library.name}")
    print("    (sid's libtensorflow-lite links abseil, ruy, farmhash... as shared libraries: not counted)")
    for label, size in board_library_sizes(cfg).items():
        print(f"  {label + ' (board, self-contained)':<52} {size}")
    print("  DAFx 2022, for comparison: libtensorflow-lite.a 2.4.1  8.8 MiB, libonnxruntime.so 1.7  12 MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
