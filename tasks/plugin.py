"""Tasks: plugin projects: new-plugin, native builds, rt-check, example models."""

from __future__ import annotations

import sys
from pathlib import Path

from elkbuild.cli import elk_task

from tasks.shell import load


@elk_task(help={"engine": "inference engine: onnx or tflite",
                "kind": "effect (inference on every block) or classifier (onsets -> worker)",
                "model": "the trained model: a .onnx or .tflite file",
                "manufacturer": "company name hosts show (kept from plugin.yaml when re-rendering)",
                "manufacturer_code": "JUCE manufacturer code: 4 characters, first uppercase",
                "plugin_code": "JUCE plugin code: 4 characters, first uppercase (default: from NAME)",
                "description": "one line describing the plugin",
                "mode": "effect: where the model runs: auto, inline (audio thread) or decoupled (worker pool)",
                "resample": "effect: a host at another rate than --sample-rate: off (refused), or "
                            "fastest, medium, best (libsamplerate, both ways)",
                "frame": "effect: samples per run for a dynamic time axis (default 64)",
                "shape": "effect: NAME=1,64,1 fixes a tensor's dynamic dimensions (repeatable)",
                "state": "effect: IN=OUT feeds output OUT back into input IN next run (repeatable)",
                "constant": "effect: NAME=VALUE fixes an input (e.g. an int64 sample rate; repeatable)",
                "audio_in": "effect: the input that is audio, when several could be",
                "audio_out": "effect: the output that is audio, when several could be",
                "sample_rate": "the rate the model was trained at (effect default: any; log-mel: 16000)",
                "features": "classifier: log-mel: the input is log-mel frames computed from the audio",
                "fft_size": "log-mel: FFT size (n_fft), a power of two (default 512)",
                "hop": "log-mel: samples between frames (hop_length; default sample rate / 100)",
                "mel_bands": "log-mel: mel bands (n_mels; default: from the input's shape)",
                "frames": "log-mel: frames the model sees (default: from the input's shape)",
                "every": "log-mel: run the model every N frames (default 1: every hop)",
                "min_hz": "log-mel: lowest mel frequency (fmin, default 0)",
                "max_hz": "log-mel: highest mel frequency (fmax, default 0: half the rate)",
                "power": "log-mel: 2 power spectrum (default), 1 magnitude",
                "mel_scale": "log-mel: slaney (librosa's default) or htk",
                "mel_norm": "log-mel: slaney (librosa's default) or none",
                "log": "log-mel: db (power_to_db, default) or ln (log(S + floor))",
                "floor": "log-mel: amin of power_to_db, or the offset of ln (default 1e-10)",
                "force": "render an existing project again (its identity is kept)",
                "json": "print the result as one JSON object"}, iterable=["shape", "state", "constant"])
def new_plugin(c, name, engine="", kind="", model="", manufacturer=None, manufacturer_code=None,
               plugin_code=None, description=None, force=False, json=False, verbose=False,
               audio_in=None, audio_out=None, mode=None, resample=None, frame=0, shape=None, state=None,
               constant=None, sample_rate=0, features=None, fft_size=None, hop=None, mel_bands=None,
               frames=None, every=None, min_hz=None, max_hz=None, power=None, mel_scale=None,
               mel_norm=None, log=None, floor=None):
    """Render a JUCE VST3 plugin project for a model into plugins/NAME."""
    from elkbuild.reporting import emit_json
    from elkbuild.errors import UsageError
    from elkbuild.plugin.identity import plugins_dir
    from elkbuild.plugin.render import NewPlugin, new_plugin as render
    from elkbuild.plugin.roles import parse_role_flags
    from elkbuild.plugin.features import parse_feature_flags

    for flag, value in (("--engine", engine), ("--kind", kind), ("--model", model)):
        if not value:
            raise UsageError(f"{flag} is required", "e.g. invoke new-plugin Fuzz --engine onnx "
                             "--kind effect --model fuzz.onnx")
    cfg = load()
    request = NewPlugin(name=name, engine=engine, kind=kind, model=Path(model),
                        manufacturer=manufacturer, manufacturer_code=manufacturer_code,
                        plugin_code=plugin_code, description=description, mode=mode, resample=resample,
                        roles=parse_role_flags(frame=frame, shapes=shape or [], states=state or [],
                                               constants=constant or [], audio_in=audio_in,
                                               audio_out=audio_out,
                                               sample_rate=0 if features else sample_rate),
                        features=parse_feature_flags(
                            features=features, sample_rate=(sample_rate or None) if features else None, fft_size=fft_size,
                            hop=hop, mel_bands=mel_bands, frames=frames, every=every, min_hz=min_hz,
                            max_hz=max_hz, power=power, scale=mel_scale, norm=mel_norm, log=log,
                            floor=floor))
    # Every guess about the model's tensors is said (on stderr with --json).
    say = (lambda line: print(f"new-plugin: {line}", file=sys.stderr)) if json else \
        (lambda line: print(f"new-plugin: {line}"))
    project = render(request, plugins_dir(cfg.root, cfg.get("project.plugins_dir")), force=force,
                     say=say)
    if json:
        emit_json({"project": str(project.root), "name": project.identity.name,
                   "engine": project.engine, "kind": project.kind, "model": str(project.model),
                   "features": project.features.__dict__ if project.features else None})
    else:
        f = project.features
        fed = f", log-mel {f.mel_bands} x {f.frames} every {f.every} frames" if f else ""
        print(f"new-plugin: {project.root} ({project.kind}, {project.engine}, "
              f"model {project.model.name}{fed})")


@elk_task(help={"out": "folder for the models (default: <cache>/example-models)",
                "json": "print the models and their reference outputs as JSON"})
def example_models(c, out="", json=False):
    """Make the example models (ONNX saturator, TFLite classifier) and print reference outputs."""
    from elkbuild.reporting import emit_json
    from elkbuild.plugin.example_models import reference_outputs, write_examples

    cfg = load()
    folder = Path(out) if out else cfg.cache_dir / "example-models"
    written = write_examples(folder)
    for name, path in written.items():
        ref = reference_outputs(path)
        if json:
            emit_json({"model": str(path), **ref})
        else:
            print(f"{path}: {ref['engine']} {ref['input_shape']} -> {ref['output_shape']}, "
                  f"first outputs {[round(v, 6) for v in ref['output'][:4]]}")


@elk_task(help={"jobs": "parallel compile jobs (default 2)",
                "json": "print the result as one JSON object"})
def build_native(c, name, jobs=2, json=False):
    """Build plugins/NAME for this machine (x86_64) with JUCE: onnx links ONNX Runtime's
    wheel, tflite Debian sid's TensorFlow Lite (its tree is made once, as root)."""
    from elkbuild.reporting import emit_json
    from elkbuild.executor import LocalExecutor
    from elkbuild.plugin.identity import plugins_dir
    from elkbuild.plugin.native_build import build_native as build

    cfg = load()
    project = plugins_dir(cfg.root, cfg.get("project.plugins_dir")) / name
    result = build(project, LocalExecutor(), cfg.cache_dir, cfg.build_dir, jobs=int(jobs),
                   on_line=None if json else (lambda line: print(line, flush=True)))
    if json:
        emit_json({"bundle": str(result.bundle), "binary": str(result.binary),
                   "seconds": round(result.seconds, 1)})
    else:
        print(f"build-native: {result.bundle} in {result.seconds:.0f} s")


@elk_task(help={"plugin": "a plugin project in plugins/: built for this machine, then checked",
                "bundle": "check this .vst3 bundle (built for this machine) instead of a project",
                "buffer": "samples per block (default 64, Elk's default)",
                "rate": "sample rate (default 48000)",
                "blocks": "blocks processed and counted (default 10000)",
                "allow_engine": "judge only the plugin's own code: calls made inside the engine "
                                "library (ONNX Runtime allocates in every run) are reported, "
                                "not failed",
                "json": "print the report as one JSON object"},
          auto_shortflags=False)
def rt_check(c, plugin="", bundle="", buffer=64, rate=48000.0, blocks=10000, allow_engine=False,
             json=False):
    """Count allocations, locks and waits on the audio thread of a plugin's process()."""
    from dataclasses import asdict

    from elkbuild.reporting import emit_json
    from elkbuild.errors import UsageError, ValidationFailed
    from elkbuild.executor import LocalExecutor
    from elkbuild.plugin.identity import plugins_dir
    from elkbuild.plugin.native_build import build_native as build, native_executor
    from elkbuild.vst3host.rt_check import format_report, rt_check as check

    if bool(plugin) == bool(bundle):
        raise UsageError("give --plugin NAME or --bundle PATH", "e.g. invoke rt-check --plugin NeuralSaturator")
    cfg = load()
    executor = LocalExecutor()
    say = None if json else (lambda line: print(line, flush=True))
    if plugin:
        project = plugins_dir(cfg.root, cfg.get("project.plugins_dir")) / plugin
        target = build(project, executor, cfg.cache_dir, cfg.build_dir, progress=say).bundle
    else:
        target = Path(bundle)
    host_dir = cfg.build_dir / "rt-check"
    report = check(target, native_executor(target, executor, cfg.cache_dir, host_dir, say),
                   host_dir, blocks=int(blocks), block=int(buffer), rate=float(rate))
    if json:
        emit_json({**asdict(report), "bundle": str(report.bundle), "unsafe": report.unsafe,
                   "engine_calls": report.engine_calls, "plugin_unsafe": report.plugin_unsafe,
                   "worker_late": report.worker_late, "problems": report.problems(allow_engine),
                   "pass": report.passes(allow_engine)})
    else:
        print(format_report(report, allow_engine))
    if not report.passes(allow_engine):
        raise ValidationFailed(f"rt-check {report.plugin}", report.problems(allow_engine),
                               "see the report above: make process() allocation- and lock-free, "
                               "fast enough for the block, and the model load")
