"""Debian's TFLite and ONNX Runtime for debian-arm64, and the default engines from PyPI
wheels with Debian's headers: real .debs from Debian's archive, real wheels.

Fetched with apt-get through a private apt configuration (sid and trixie),
verified against apt's index, unpacked with dpkg -x inside the toolchain
container into staged prefixes of aarch64 libraries and headers.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from cli_helpers import run_task
from deps_real_parts import container_project
from elftools.elf.elffile import ELFFile

from conftest import require_real_part
from elkbuild.deps import DepsRunner
from elkbuild.deps.lockfile import LOCK_FILE_NAME, PinFile
from elkbuild.deps.recipes import BUILTIN_RECIPES, load_recipes, select
from elkbuild.deps.source_cache import SourceCache
from elkbuild.digests import sha256_file
from elkbuild.elf import exported_functions, read_elf, version_key
from elkbuild.executor import LocalExecutor

pytestmark = pytest.mark.slow


def debian_reachable() -> bool:
    done = LocalExecutor().run(["apt-get", "--version"], check=False)
    return done.returncode == 0


def test_onnxruntime_and_tflite_from_debian(tmp_path: Path, request):
    require_real_part(debian_reachable(), "apt-get", "run on Debian or Ubuntu")
    cfg, toolchain, make_executor = container_project(request, tmp_path)
    if isinstance(make_executor(), LocalExecutor):  # developer run without Docker (see deps_real_parts)
        results = {r.name: r for r in DepsRunner(cfg, toolchain, make_executor=make_executor,
                                                 variant="debian", fetch_executor=LocalExecutor()).build()}
    else:
        # As a user runs it: the task, the toolchain's container, JSON for CI.
        done = run_task("build-deps", "--toolchain", "debian-arm64", "--variant", "debian", "--json",
                        project=cfg.root,
                        env={"ELKBUILD_CACHE": str(cfg.cache_dir)}, timeout=900)
        assert done.returncode == 0, done.stderr
        docs = [json.loads(line) for line in done.stdout.splitlines()]
        assert {d["status"] for d in docs} == {"built"}
        results = {d["name"]: SimpleNamespace(prefix=Path(d["prefix"])) for d in docs}
    assert set(results) == {"onnxruntime", "tflite"}

    expected = {"onnxruntime": ("include/onnxruntime/onnxruntime_cxx_api.h", "lib/libonnxruntime.so"),
                "tflite": ("include/tensorflow/lite/interpreter.h", "lib/libtensorflow-lite.so")}
    for name, (header, library) in expected.items():
        prefix = results[name].prefix
        assert prefix.parent == cfg.build_dir / "deps" / "debian-arm64"
        assert (prefix / header).is_file()
        lib = prefix / library
        # The -dev package's link, made relative, resolves to the runtime package's library.
        assert lib.is_symlink() and not os.path.isabs(os.readlink(lib))
        with open(lib.resolve(), "rb") as handle:
            elf = ELFFile(handle)
            assert elf.header["e_machine"] == "EM_AARCH64"
            assert elf.header["e_type"] == "ET_DYN"
        assert sorted(p.name for p in prefix.iterdir()) == ["elkbuild-dep.json", "include", "lib"]
        meta = json.loads((prefix / "elkbuild-dep.json").read_text())
        assert meta["arch"] == "aarch64" and meta["toolchain"] == "debian-arm64"
        assert all(s["sha256"] and s["version"] for s in meta["sources"])
        # Debian's libraries are built for newer suites than the bullseye sysroot: say so.
        assert tuple(map(int, meta["needs"]["GLIBC"].split("."))) >= (2, 38)
        assert meta["abi"]["glibc"] == "2.31"

    ort_meta = json.loads((results["onnxruntime"].prefix / "elkbuild-dep.json").read_text())
    versions = {s["package"]: s["version"] for s in ort_meta["sources"]}
    assert versions["libonnxruntime-dev"] == versions["libonnxruntime1.21"]

    lock = yaml.safe_load((cfg.root / LOCK_FILE_NAME).read_text())
    assert {"sid/arm64/libtensorflow-lite-dev", "trixie/arm64/libonnxruntime-dev"} <= set(lock["debs"])

    def no_container():
        raise AssertionError("an up-to-date build must not start the container")

    offline = DepsRunner(cfg, toolchain, make_executor=no_container, offline=True, variant="debian", fetch_executor=LocalExecutor())
    assert {r.status for r in offline.build()} == {"up to date"}
    again = run_task("build-deps", "--toolchain", "debian-arm64", "--variant", "debian", "--offline",
                     project=cfg.root,
                     env={"ELKBUILD_CACHE": str(cfg.cache_dir)})
    assert again.returncode == 0 and again.stdout.count(": up to date") == 2, again.stderr


def test_default_onnxruntime_is_the_wheels_library_and_runs_on_elk_glibc(tmp_path: Path, request):
    """The default debian-arm64 engine: PyPI's aarch64 wheel (fetched with pip, pinned
    by digest) plus Debian's headers; its library needs no newer glibc than Elk 1.x has."""
    require_real_part(debian_reachable(), "apt-get", "run on Debian or Ubuntu")
    cfg, toolchain, make_executor = container_project(request, tmp_path)
    (result,) = DepsRunner(cfg, toolchain, make_executor=make_executor, fetch_executor=LocalExecutor()).build(only="onnxruntime")
    assert (result.status, result.version) == ("built", "1.21.1")
    library = result.prefix / "lib" / "libonnxruntime.so.1.21.1"
    with open(library, "rb") as handle:
        assert ELFFile(handle).header["e_machine"] == "EM_AARCH64"
    assert (result.prefix / "include" / "onnxruntime_cxx_api.h").is_file()
    assert not (result.prefix / "include" / "onnxruntime").exists()  # headers at the top
    glibc = tuple(map(int, result.needs["GLIBC"].split(".")))
    assert glibc <= (2, 31), f"Elk Audio OS 0.11 has glibc 2.31; the library needs {glibc}"

    lock = yaml.safe_load((cfg.root / LOCK_FILE_NAME).read_text())
    (pin,) = lock["wheels"].values()
    assert len(pin["sha256"]) == 64 and pin["file"].endswith("aarch64.whl")

    def no_container():
        raise AssertionError("an up-to-date build must not start the container")

    offline = DepsRunner(cfg, toolchain, make_executor=no_container, offline=True, fetch_executor=LocalExecutor())
    assert [r.status for r in offline.build(only="onnxruntime")] == ["up to date"]


LITERT_LIBRARY_SHA256 = "23781d014a0e0de4f8dd40553e558e5f1248e29b1d135edeb187894588fd8d33"
TFLITE_C_API = {"TfLiteModelCreateFromFile", "TfLiteInterpreterOptionsCreate",
                "TfLiteInterpreterOptionsSetNumThreads", "TfLiteInterpreterCreate",
                "TfLiteInterpreterResizeInputTensor", "TfLiteInterpreterAllocateTensors",
                "TfLiteInterpreterGetInputTensor", "TfLiteInterpreterGetOutputTensor",
                "TfLiteInterpreterInvoke", "TfLiteTensorCopyFromBuffer", "TfLiteTensorCopyToBuffer",
                "TfLiteInterpreterDelete", "TfLiteModelDelete"}


def test_default_tflite_is_litert_c_api_library_that_fits_elk_0_11(tmp_path: Path, request):
    """The default debian-arm64 TFLite: LiteRT 1.4.0's aarch64 C API library from its
    PyPI wheel and Debian sid's C API headers, both pinned by the recipe's sha256;
    a hand-carried copy of both builds it again with no network."""
    require_real_part(debian_reachable(), "apt-get", "run on Debian or Ubuntu")
    cfg, toolchain, make_executor = container_project(request, tmp_path)
    started = time.monotonic()
    (result,) = DepsRunner(cfg, toolchain, make_executor=make_executor,
                           fetch_executor=LocalExecutor()).build(only="tflite")
    print(f"tflite {result.version} fetched and staged in {time.monotonic() - started:.1f} s")
    assert (result.status, result.version, result.variant) == ("built", "1.4.0", "default")
    library = result.prefix / "lib" / "libLiteRtRuntimeCApi.so"
    assert sha256_file(library) == LITERT_LIBRARY_SHA256
    elf = read_elf(library)
    assert elf is not None and elf.machine == "EM_AARCH64"
    assert elf.soname == "libLiteRtRuntimeCApi.so" and not elf.runpath
    assert TFLITE_C_API <= exported_functions(library)
    include = result.prefix / "include" / "tensorflow" / "lite"
    assert (include / "c" / "c_api.h").is_file() and (include / "core" / "c" / "c_api.h").is_file()
    assert not (include / "interpreter.h").exists()  # the C API only
    # Elk Audio OS 0.11: glibc 2.31, libstdc++ 3.4.28.
    assert version_key(result.needs["GLIBC"]) <= version_key("2.30"), result.needs
    assert version_key(result.needs["GLIBCXX"]) <= version_key("3.4.26"), result.needs
    lock = yaml.safe_load((cfg.root / LOCK_FILE_NAME).read_text())
    assert not any(key.startswith("ai-edge-litert") for key in lock.get("wheels") or {})

    # Offline, on another machine with the project's lock file, from files carried
    # in by hand: each is adopted from incoming/ only because its digest matches.
    carried = SourceCache(tmp_path / "carried-cache", PinFile(cfg.root / LOCK_FILE_NAME), offline=True)
    carried.incoming.mkdir(parents=True)
    recipe = select(load_recipes([BUILTIN_RECIPES]), "debian-arm64", only="tflite")[0]
    assert [gap.what for gap in carried.missing(recipe)] != []
    for found in [*cfg.cache_dir.glob("sources/wheels/*/ai_edge_litert-1.4.0-*aarch64.whl"),
                  *cfg.cache_dir.glob("sources/debs/*/libtensorflow-lite-dev_2.14.1+dfsg-3.1+b1_arm64.deb")]:
        shutil.copy2(found, carried.incoming)
    assert len(list(carried.incoming.iterdir())) == 2
    assert carried.missing(recipe) == []
    for source in recipe.sources:
        assert sha256_file(carried.fetch(recipe, source, LocalExecutor())) == source.sha256
    assert not list(carried.incoming.iterdir())
