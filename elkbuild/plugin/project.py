"""Plugin projects: render a new one from a model (jinja2), and build one natively.

`new-plugin` reads the model's tensors, checks that they fit the chosen kind, and
renders templates/plugin (with the engine sources of templates/engines) into
plugins/<Name>/, with the model copied into <Name>/model/. The project is rendered
beside its final place and moved in whole, so a failure leaves nothing half-made.

Kinds:
- effect: the model maps a frame of N samples to N samples; it runs on every block
  on the audio thread.
- classifier: the model maps F features to C class scores; an onset detector on the
  audio thread hands features to a worker thread through lock-free queues and the
  result comes back as a MIDI note; the plugin reports its latency.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import jinja2

from elkbuild.errors import BuildError, ConfigError, ToolMissing, UsageError
from elkbuild.executor import Executor
from elkbuild.build.juce import patched_juce
from elkbuild.plugin.models import ModelError, ModelInfo, TensorInfo, model_format, read_model
from elkbuild.plugin.identity import (CODE_RULE, IDENTITY_FILE, NAME_RULE, PluginIdentity,
                             code_is_valid, load_identity, name_is_valid)
from elkbuild.config import read_yaml_file

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
KINDS = ("effect", "classifier")
ENGINES = {"onnx": "onnx", "tflite": "tflite"}   # engine -> model format it runs
MAX_FRAME = 8192          # samples per effect frame
MAX_FEATURES = 4096
MAX_CLASSES = 68          # MIDI notes 60..127
DEFAULT_MANUFACTURER = "Elkbuild User"
DEFAULT_MANUFACTURER_CODE = "Elku"
CLASSIFIER_DEFAULTS = {"window_ms": 46.0, "first_note": 60, "onset_ratio": 2.0,
                       "onset_floor": 0.01}


@dataclass(frozen=True)
class NewPlugin:
    """What the user asked `new-plugin` for (flags), before any file is touched."""

    name: str
    engine: str
    kind: str
    model: Path
    manufacturer: str | None = None
    manufacturer_code: str | None = None
    plugin_code: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class PluginProject:
    """A rendered project as plugin.yaml describes it."""

    root: Path
    identity: PluginIdentity
    engine: str
    kind: str
    model: Path


# ---- checks -----------------------------------------------------------------

def _one_line_text(flag: str, value: str) -> str:
    if not value.strip() or any(ch in value for ch in "\r\n\t\0"):
        raise UsageError(f"{flag} {value!r}: must be one line of text", f"give a plain {flag}")
    return value.strip()


def default_plugin_code(name: str) -> str:
    """First four letters/digits of the name, first one uppercase (Neur for NeuralSaturator)."""
    letters = re.sub(r"[^A-Za-z0-9]", "", name)
    code = (letters + "xxxx")[:4]
    return code[0].upper() + code[1:]


def check_request(request: NewPlugin) -> None:
    """Flag-level checks: every problem names the flag and the fix."""
    if not name_is_valid(request.name):
        raise UsageError(f"NAME {request.name!r} {NAME_RULE}",
                         "it names the folder, the .vst3 bundle and the CMake target")
    if request.engine not in ENGINES:
        raise UsageError(f"--engine {request.engine!r} is not known", "use --engine onnx or --engine tflite")
    if request.kind not in KINDS:
        raise UsageError(f"--kind {request.kind!r} is not known", "use --kind effect or --kind classifier")
    for flag, code in (("--manufacturer-code", request.manufacturer_code),
                       ("--plugin-code", request.plugin_code)):
        if code is not None and not code_is_valid(code):
            raise UsageError(f"{flag} {code!r} {CODE_RULE}", f"e.g. {flag} Abcd")
    for flag, text in (("--manufacturer", request.manufacturer), ("--description", request.description)):
        if text is not None:
            _one_line_text(flag, text)
    fmt = model_format(request.model)
    if ENGINES[request.engine] != fmt:
        other = "tflite" if fmt == "tflite" else "onnx"
        raise UsageError(f"--model {request.model} is a {fmt} model but --engine is {request.engine}",
                         f"use --engine {other}, or give a .{ENGINES[request.engine]} model")


def fit_model(info: ModelInfo, kind: str) -> tuple[TensorInfo, TensorInfo]:
    """The one input and one output a plugin of `kind` can drive, or a ModelError."""
    if len(info.inputs) != 1 or len(info.outputs) != 1:
        raise ModelError(info.path, f"has {len(info.inputs)} inputs and {len(info.outputs)} outputs; "
                         "a plugin model needs exactly one of each",
                         "export the model with a single input and a single output tensor")
    tensor_in, tensor_out = info.inputs[0], info.outputs[0]
    for role, tensor in (("input", tensor_in), ("output", tensor_out)):
        if tensor.dtype != "float32":
            raise ModelError(info.path, f"{role} {tensor.name!r} is {tensor.dtype}; plugins run float32",
                             "export a float32 model (quantise inside, keep float32 in/out)")
        if not tensor.is_fixed:
            raise ModelError(info.path, f"{role} {tensor.name!r} has the dynamic shape "
                             f"{_shape_text(tensor.shape)}; buffers are sized before audio starts",
                             "export the model with fixed sizes (only the batch may be dynamic)")
    if kind == "effect":
        if tensor_in.elements != tensor_out.elements:
            raise ModelError(info.path, f"an effect maps N samples to N samples, but input "
                             f"{_shape_text(tensor_in.shape)} has {tensor_in.elements} and output "
                             f"{_shape_text(tensor_out.shape)} {tensor_out.elements}",
                             "use --kind classifier for a model that outputs class scores")
        if not 1 <= tensor_in.elements <= MAX_FRAME:
            raise ModelError(info.path, f"frame of {tensor_in.elements} samples is not in 1..{MAX_FRAME}",
                             "export the model for a smaller frame")
    else:
        if not 1 <= tensor_in.elements <= MAX_FEATURES:
            raise ModelError(info.path, f"{tensor_in.elements} input features is not in 1..{MAX_FEATURES}",
                             "a classifier takes a small feature vector")
        if not 2 <= tensor_out.elements <= MAX_CLASSES:
            raise ModelError(info.path, f"{tensor_out.elements} output classes is not in 2..{MAX_CLASSES} "
                             "(one MIDI note each)", "use --kind effect for a model that outputs audio")
    return tensor_in, tensor_out


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


# ---- rendering --------------------------------------------------------------

def _cmake_string(value: str) -> str:
    return re.sub(r'([\\"$;])', r"\\\1", value)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters["cmake_string"] = _cmake_string
    return env


def _existing_identity(project: Path) -> PluginIdentity | None:
    source = project / IDENTITY_FILE
    return load_identity(source) if source.is_file() else None


def template_context(request: NewPlugin, tensor_in: TensorInfo, tensor_out: TensorInfo,
                     existing: PluginIdentity | None = None) -> dict:
    """Everything the templates use. Identity not given on the command line is kept
    from an existing plugin.yaml, so re-rendering never changes who a plugin is."""
    def pick(given: str | None, kept: str | None, default: str) -> str:
        return given if given is not None else (kept if kept else default)

    def tensor(t: TensorInfo) -> dict:
        return {"name": t.name, "elements": t.elements, "shape_text": _shape_text(t.shape)}

    return {
        "name": request.name,
        "class_name": re.sub(r"\W", "_", request.name) + "AudioProcessor",
        "version": "1.0.0",
        "engine": request.engine,
        "kind": request.kind,
        "model_file": request.model.name,
        "manufacturer": pick(request.manufacturer, existing and existing.manufacturer,
                             DEFAULT_MANUFACTURER),
        "manufacturer_code": pick(request.manufacturer_code, existing and existing.manufacturer_code,
                                  DEFAULT_MANUFACTURER_CODE),
        "plugin_code": pick(request.plugin_code, existing and existing.plugin_code,
                            default_plugin_code(request.name)),
        "vst3_class_name": existing.vst3_class_name if existing else request.name,
        "description": pick(request.description, existing and existing.description,
                            f"{request.name}: a neural {request.kind} ({request.engine})"),
        "input": tensor(tensor_in),
        "output": tensor(tensor_out),
        **CLASSIFIER_DEFAULTS,
    }


def render_tree(context: dict, into: Path) -> list[Path]:
    """Render templates/plugin into `into` and add the engine sources; returns files."""
    env = _environment()
    source = TEMPLATES / "plugin"
    written = []
    for path in sorted(source.rglob("*")):
        if path.is_dir():
            continue
        relative = path.relative_to(source)
        if context["kind"] != "classifier" and relative.name == "SpscQueue.h":
            continue
        if path.suffix == ".j2":
            target = into / relative.with_suffix("")
            text = env.get_template(f"plugin/{relative.as_posix()}").render(**context)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        else:
            target = into / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        written.append(target)
    # Both engines are copied: switching is a CMake option, not a re-render.
    for path in sorted((TEMPLATES / "engines").iterdir()):
        target = into / "Source" / "engines" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        written.append(target)
    return written


def new_plugin(request: NewPlugin, projects: Path, *, force: bool = False) -> PluginProject:
    """Check everything, render beside plugins/<Name>, then move the project in whole."""
    check_request(request)
    info = read_model(request.model)
    tensor_in, tensor_out = fit_model(info, request.kind)
    project = projects / request.name
    existing = None
    if project.exists():
        only_identity = sorted(p.name for p in project.iterdir()) == [IDENTITY_FILE]
        if not (force or only_identity):
            raise UsageError(f"{project} already exists",
                             "pass --force to render it again (its identity is kept), "
                             "or choose another NAME")
        existing = _existing_identity(project)
    context = template_context(request, tensor_in, tensor_out, existing)
    for key in ("manufacturer_code", "plugin_code"):
        if not code_is_valid(context[key]):
            flag = "--" + key.replace("_", "-")
            raise UsageError(f"{key} {context[key]!r} (derived from NAME) {CODE_RULE}",
                             f"give {flag} explicitly")

    projects.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{request.name}.", dir=projects))
    try:
        render_tree(context, staging)
        (staging / "model").mkdir(exist_ok=True)
        shutil.copyfile(request.model, staging / "model" / request.model.name)
        load_project(staging, folder_name=request.name)  # what was rendered reads back
        old = None
        if project.exists():
            old = projects / f".{request.name}.replaced"
            shutil.rmtree(old, ignore_errors=True)
            project.rename(old)
        staging.rename(project)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return load_project(project)


def load_project(root: Path, folder_name: str | None = None) -> PluginProject:
    """Identity plus build keys of a rendered project; every problem names plugin.yaml."""
    source = root / IDENTITY_FILE
    if folder_name is None:
        identity = load_identity(source)
    else:  # a project still in its staging folder: the folder name comes later
        identity = _identity_named(source, folder_name)
    data = read_yaml_file(source)
    engine = data.get("engine")
    if engine not in ENGINES:
        raise ConfigError(source, "engine", engine, "must be onnx or tflite")
    kind = data.get("kind")
    if kind not in KINDS:
        raise ConfigError(source, "kind", kind, "must be effect or classifier")
    model_name = data.get("model")
    if not isinstance(model_name, str) or "/" in model_name or not model_name:
        raise ConfigError(source, "model", model_name, "must be a file name inside model/")
    model = root / "model" / model_name
    if not model.is_file():
        raise ConfigError(source, "model", model_name, f"names {model}, which does not exist",
                          "copy the model there or run `invoke new-plugin --force`")
    if model_format(model) != ENGINES[engine]:
        raise ConfigError(source, "engine", engine, f"does not run {model.name}",
                          "set engine to match the model file")
    return PluginProject(root, identity, engine, kind, model)


def _identity_named(source: Path, folder_name: str) -> PluginIdentity:
    with tempfile.TemporaryDirectory() as tmp:
        check = Path(tmp) / folder_name / IDENTITY_FILE
        check.parent.mkdir()
        shutil.copyfile(source, check)
        found = load_identity(check)
    return PluginIdentity(**{**found.__dict__, "source": source})


# ---- native build -----------------------------------------------------------

@dataclass(frozen=True)
class NativeBuild:
    project: PluginProject
    bundle: Path          # <Name>.vst3
    binary: Path          # the plugin's shared object inside the bundle
    seconds: float


def forget_build_of_other_source(build_dir: Path, source: Path) -> bool:
    """Build folders are named after the plugin; when the one found was configured for
    a project elsewhere (moved, or another of the same name) CMake refuses it, so it
    is removed and configured afresh. True when it was removed."""
    cache = build_dir / "CMakeCache.txt"
    if not cache.is_file():
        return False
    for line in cache.read_text(errors="replace").splitlines():
        if line.startswith("CMAKE_HOME_DIRECTORY:"):
            configured = line.split("=", 1)[1]
            if Path(configured).resolve() == Path(source).resolve():
                return False
            shutil.rmtree(build_dir)
            return True
    return False


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


@dataclass(frozen=True)
class EngineLibrary:
    """The inference engine a native build links: its shared library (copied into
    the bundle under its file name, which must be its SONAME, except for ONNX
    Runtime, see the template), its include directories and extra linker flags."""

    engine: str
    library: Path
    include_dirs: tuple[Path, ...]
    link_flags: tuple[str, ...] = ()


def onnxruntime_engine(executor: Executor, cache_dir: Path) -> EngineLibrary:
    """The PyPI wheel's ONNX Runtime with Debian's headers."""
    return EngineLibrary("onnx", onnxruntime_wheel_library(), (onnxruntime_headers(executor, cache_dir),))


def build_native(project_dir: Path, executor: Executor, cache_dir: Path, build_root: Path,
                 *, jobs: int = 2, niceness: int | None = 10,
                 on_line: Callable[[str], None] | None = None,
                 engine: EngineLibrary | None = None) -> NativeBuild:
    """Configure and build the plugin for this machine with the host compiler and
    JUCE's CMake package. An onnx project links the ONNX Runtime library of the PyPI
    wheel unless `engine` says otherwise; a tflite project needs `engine` (this host
    has no TensorFlow Lite: elkbuild.build.tflite_runtime provides one)."""
    project = load_project(project_dir)
    if engine is None:
        if project.engine != "onnx":
            raise BuildError(f"{project.identity.source}: engine {project.engine} has no native "
                             "engine library on this machine",
                             "pass engine= (elkbuild.tflite_runtime.tflite_engine), or build it "
                             "for the board (cross build)")
        engine = onnxruntime_engine(executor, cache_dir)
    if engine.engine != project.engine:
        raise BuildError(f"{project.identity.source}: the project runs {project.engine} but the "
                         f"engine library given is {engine.engine} ({engine.library.name})",
                         f"pass a {project.engine} engine library")
    if not engine.library.is_file():
        raise BuildError(f"the engine library {engine.library} does not exist",
                         "make the engine's library first")
    if shutil.which("cmake") is None:
        raise ToolMissing("cmake", "apt-get install cmake")
    name = project.identity.name
    build_dir = build_root / "native" / name
    forget_build_of_other_source(build_dir, project.root)
    prefix = ["nice", "-n", str(niceness)] if niceness is not None else []
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    started = time.monotonic()
    juce_dir = patched_juce(executor, cache_dir)
    link_flags = " ".join(engine.link_flags)
    # VST3 bundles are MODULE libraries in JUCE's CMake; set both kinds.
    linking = ([f"-DCMAKE_MODULE_LINKER_FLAGS={link_flags}", f"-DCMAKE_SHARED_LINKER_FLAGS={link_flags}"]
               if link_flags else [])
    executor.run(["cmake", "-S", str(project.root), "-B", str(build_dir), *generator,
                  "-DCMAKE_BUILD_TYPE=Release",
                  f"-DJUCE_DIR={juce_dir}",
                  f"-DELKBUILD_ENGINE={project.engine}",
                  f"-DELKBUILD_ENGINE_INCLUDE_DIRS={';'.join(str(d) for d in engine.include_dirs)}",
                  f"-DELKBUILD_ENGINE_LIBRARY={engine.library}",
                  *linking,
                  f"-DELKBUILD_MODEL={project.model}"], on_line=on_line,
                 hint="JUCE's CMake package comes from `apt-get install juce-modules-source juce-tools`")
    executor.run([*prefix, "cmake", "--build", str(build_dir), "--target", f"{name}_VST3",
                  "--parallel", str(jobs)], on_line=on_line)
    seconds = time.monotonic() - started
    bundle = build_dir / f"{name}_artefacts" / "Release" / "VST3" / f"{name}.vst3"
    binaries = sorted(bundle.glob(f"Contents/*-linux/{name}.so"))
    if not binaries:
        raise BuildError(f"the build left no {name}.so in {bundle}/Contents/<arch>-linux",
                         f"look at the build log in {build_dir}")
    return NativeBuild(project, bundle, binaries[0], seconds)
