"""`invoke demo`: the main job on defaults, model to running plugin, end to end.

With no SDK and no Pi given, that is: the offline debian-arm64 toolchain and the
emulated Elk board.

1. every example rig rendered for both Sushi formats and checked as Sushi would;
2. the toolchain's Docker image (built from a seeded Debian base the first time);
3. the example plugin (ONNX saturator) cross-built, its engine staged by
   build-deps, bundled and passed through the ABI gate;
4. the emulated board brought up (built from Debian packages the first time);
5. plugin and rig deployed (incremental, atomic, Sushi health-checked);
6. a test signal processed on the board by Sushi's offline mode through the
   deployed aarch64 plugin, compared with the model run here;
7. the monitor watching the real-time threads for a few seconds.

Every stage is skipped in well under a second when nothing changed, so a second
demo takes seconds. `rigs_only` stops after stage 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from elkbuild.config import Board, Config
from elkbuild.errors import BuildError, ValidationFailed
from elkbuild.executor import Executor
from elkbuild.sushi import VERSIONS, check_file, render_rigs

EXAMPLE_PLUGIN = "NeuralSaturator"
EXAMPLE_RIG = "neural-mono"
SAMPLE_RATE = 48000
TEST_FRAMES = 9600          # 0.2 s of test signal
MATCH_TOLERANCE = 1e-5


@dataclass(frozen=True)
class DemoStep:
    what: str
    detail: str


@dataclass(frozen=True)
class DemoOptions:
    board_name: str = "default"
    port: int | None = None
    monitor_seconds: float = 3.0
    rigs_only: bool = False
    quiet: bool = False         # no progress displays (JSON output)


Say = Callable[[DemoStep], None]


def run_demo(cfg: Config, say: Say, host: Executor,
             options: DemoOptions = DemoOptions()) -> list[DemoStep]:
    steps: list[DemoStep] = []

    def step(what: str, detail: str) -> None:
        steps.append(DemoStep(what, detail))
        say(steps[-1])

    check_rigs(cfg, step)
    if options.rigs_only:
        return steps
    bundle = build_example(cfg, step, host, options)
    board = start_board(cfg, step, host, options)
    target = board_target(cfg, board)
    deploy_example(cfg, step, target, bundle, options)
    check_offline(cfg, step, board)
    watch(step, target, options)
    return steps


def check_rigs(cfg: Config, step: Callable[[str, str], None]) -> None:
    """Render and check every rig; raise ValidationFailed if any config is refused."""
    rendered = render_rigs(cfg, [], list(VERSIONS))
    for result in rendered:
        step("rendered", f"{result.rig.stem} for Sushi {result.version} -> "
                         f"{result.dest.relative_to(cfg.root)}")
    refused = []
    for result in rendered:
        verdict = check_file(result.dest, result.version)
        if not verdict.ok:
            refused += [f"{result.dest}: {p}" for p in verdict.report.problems]
        step("checked", f"{result.dest.name}: "
                        f"{'accepted' if verdict.ok else 'REFUSED'} by Sushi {result.version}")
    if refused:
        raise ValidationFailed("demo: rendered configs Sushi would refuse", refused)


def build_example(cfg: Config, step: Callable[[str, str], None], host: Executor,
                  options: DemoOptions) -> Path:
    from elkbuild.docker.commands import build_image, image_toolchain
    from elkbuild.reporting import Reporter
    from elkbuild.plugin.cross_build import build_plugins

    image = build_image(cfg, image_toolchain(cfg.toolchain, cfg=cfg), host=host,
                        display=Reporter(quiet=options.quiet))
    step("image", f"{image.tag}: {'unchanged' if image.reused else 'built'} "
                  f"({image.seconds:.1f} s)")
    (result,) = build_plugins(cfg, [EXAMPLE_PLUGIN], reporter=Reporter(quiet=options.quiet),
                              host=host)
    bundled = ", ".join(p.name for p in result.bundle.libraries) or "no extra libraries"
    step("built", f"{EXAMPLE_PLUGIN} for {result.toolchain}: {result.status} "
                  f"({result.seconds:.1f} s), ABI gate {', '.join(result.profiles)} passed, bundled {bundled}")
    return result.bundle.path


def start_board(cfg: Config, step: Callable[[str, str], None], host: Executor,
                options: DemoOptions) -> Any:
    from elkbuild.emulated_board import EmulatedBoard

    board = EmulatedBoard(host, cfg.cache_dir, name=options.board_name,
                          port=options.port)
    seconds = board.up(progress=None if options.quiet else (lambda text: step("board", text)))
    step("board", f"emulated board {board.name!r} up on {board.host}:{board.port} "
                  f"(Elk Audio OS {board.os_version} profile, {seconds:.1f} s)")
    return board


def board_target(cfg: Config, board: Any) -> Board:
    """The emulated board as deploy and monitor see it: `--board emulated` does the same."""
    from elkbuild.emulated_board.target import emulated_target

    return emulated_target(cfg, board)


def deploy_example(cfg: Config, step: Callable[[str, str], None], target: Board, bundle: Path,
                   options: DemoOptions) -> None:
    from elkbuild.deploy.many import deploy_many
    from elkbuild.deploy.payload import collect_payload
    from elkbuild.deploy.request import render_rig_config
    from elkbuild.sushi.service import settings_for

    name, data = render_rig_config(cfg, EXAMPLE_RIG, target)
    payload = collect_payload([bundle], (name, data, EXAMPLE_RIG))
    (result,) = deploy_many([target], payload, lambda b: settings_for(b, cfg),
                            show_progress=not options.quiet)
    if not result.ok:
        raise BuildError(f"demo: deploy to {target.address} failed: {result.message}",
                         "see `invoke logs --board` output, or run `invoke deploy` with --verbose")
    step("deployed", f"{EXAMPLE_PLUGIN} + {EXAMPLE_RIG} to {target.address}: "
                     f"{result.files_sent} files, {result.bytes_sent} bytes sent; {result.message}")


def test_signal() -> np.ndarray:
    """A sweep of growing level: quiet parts pass almost clean, loud parts saturate."""
    t = np.arange(TEST_FRAMES) / SAMPLE_RATE
    sweep = np.sin(2 * np.pi * (110 + 1000 * t) * t)
    return (sweep * np.linspace(0.05, 1.2, TEST_FRAMES)).astype(np.float32)


def model_reference(model: Path, audio: np.ndarray, frame: int) -> np.ndarray:
    """The model run here with onnxruntime, frame by frame as the plugin runs it."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (feed,) = [i.name for i in session.get_inputs()]
    padded = np.zeros(-(-audio.size // frame) * frame, dtype=np.float32)
    padded[:audio.size] = audio
    frames = [session.run(None, {feed: padded[i:i + frame].reshape(1, frame)})[0].ravel()
              for i in range(0, padded.size, frame)]
    return np.concatenate(frames)[:audio.size]


def delayed_difference(out: np.ndarray, expected: np.ndarray, latency: int) -> float:
    """Max |out - expected delayed by `latency`| (silence before it)."""
    shifted = np.zeros_like(expected)
    shifted[latency:] = expected[:expected.size - latency]
    return float(np.max(np.abs(out - shifted)))


def _wav_bytes(audio: np.ndarray) -> bytes:
    body = audio.astype("<f4").tobytes()
    header = (b"RIFF" + (36 + len(body)).to_bytes(4, "little") + b"WAVEfmt "
              + (16).to_bytes(4, "little") + (3).to_bytes(2, "little") + (1).to_bytes(2, "little")
              + SAMPLE_RATE.to_bytes(4, "little") + (4 * SAMPLE_RATE).to_bytes(4, "little")
              + (4).to_bytes(2, "little") + (32).to_bytes(2, "little")
              + b"data" + len(body).to_bytes(4, "little"))
    return header + body


def _wav_samples(data: bytes) -> np.ndarray:
    at = data.index(b"data")
    size = int.from_bytes(data[at + 4:at + 8], "little")
    return np.frombuffer(data[at + 8:at + 8 + size], dtype="<f4")


def check_offline(cfg: Config, step: Callable[[str, str], None], board: Any) -> None:
    """Sushi's offline mode on the board, through the deployed plugin, against the model."""
    from elkbuild.plugin.identity import plugins_dir
    from elkbuild.plugin.models import read_model
    from elkbuild.plugin.project import load_project
    from elkbuild.vst3host.run import chain_latency, result_line

    project = load_project(plugins_dir(Path(cfg.root), cfg.get("project.plugins_dir")) / EXAMPLE_PLUGIN)
    audio = test_signal()
    board.run(["install", "-d", "-o", "mind", "-g", "mind", "/udata/elkbuild-demo"], check=True)
    board.path("/udata/elkbuild-demo/in.wav").write_bytes(_wav_bytes(audio))
    config = f"/home/mind/config_files/{EXAMPLE_RIG}.json"
    done = board.run(["sushi", "-o", "-c", config, "-i", "/udata/elkbuild-demo/in.wav",
                      "-O", "/udata/elkbuild-demo/out.wav"], user="mind", timeout=300)
    if done.returncode != 0:
        raise BuildError(f"demo: Sushi's offline run on the board failed: "
                         f"{(done.stderr or done.stdout).strip()[-300:]}",
                         "see /tmp/sushi.log on the board (invoke logs)")
    out = _wav_samples(board.path("/udata/elkbuild-demo/out.wav").read_bytes())
    frame = int(read_model(project.model).inputs[0].fixed_shape[-1])
    expected = model_reference(project.model, audio, frame)
    latency = chain_latency(result_line(done.stdout))
    if latency is None or not 0 <= latency < audio.size // 2:
        raise BuildError(f"demo: the board's offline run reported no usable plugin latency "
                         f"({latency}): its output cannot be lined up with the model's",
                         "the plugin must report its latency (getLatencySamples) before processing")
    error = delayed_difference(out, expected, latency) if out.size == audio.size else float("inf")
    if not error < MATCH_TOLERANCE:
        raise BuildError(f"demo: the board's output differs from the model's delayed by the "
                         f"{latency} samples the plugin reports, by {error:.3g}",
                         "the deployed plugin does not compute what the model does")
    step("processed", f"{TEST_FRAMES} samples through {EXAMPLE_PLUGIN} on the board (Sushi "
                      f"offline mode, aarch64 under qemu): max difference from the model "
                      f"delayed by the {latency} samples the plugin reports: "
                      f"{error:.1e}; the model changed the signal by up to "
                      f"{float(np.max(np.abs(out - audio))):.2f}")


def watch(step: Callable[[str, str], None], target: Board, options: DemoOptions) -> None:
    from elkbuild.board.connection import connect
    from elkbuild.emulated_board.target import OS_SOURCE
    from elkbuild.monitor import session as monitor
    from elkbuild.monitor.presenter import JsonPresenter, TablePresenter
    from elkbuild.reporting import emit_json

    presenter = JsonPresenter(emit_json) if options.quiet else TablePresenter()
    settings = monitor.MonitorOptions(interval=0.5, duration=options.monitor_seconds, grace=1.0,
                                      fail_on_switch=False)
    with connect(target) as conn:
        summary = monitor.monitor_board(conn, settings, presenter, expected_os=target.os_version,
                                        config_key=OS_SOURCE)
    step("monitored", f"{options.monitor_seconds:g} s of real-time threads on {target.address}: "
                      f"{summary.message()}")
