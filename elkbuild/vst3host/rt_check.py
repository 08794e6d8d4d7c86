"""rt-check: is a VST3 plugin's process() real-time safe?

elkbuild's VST3 host (vst3host/build.py) runs the plugin with the call counter
preloaded: N blocks of noise on a dedicated audio thread, counting every
allocation, mutex and condition-variable call made on that thread inside
process(), timing every block against its deadline, and comparing the output
with the input delayed by the latency the plugin reports. A plugin passes when
the count is zero, its blocks are in time, and its output is neither silence nor
the input passed through (a model that did not run), and the workers of its
decoupled models kept up (the plugin's worker report: a late worker leaves zeros
in the output while the audio thread stays fast); a plugin that refuses to
activate (its model did not load) fails with the host's error. This module turns
the host's answer into a report and its verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from elkbuild.build.engines import ENGINE_LIBRARIES
from elkbuild.bundle.layout import BundleLayout
from elkbuild.errors import UsageError
from elkbuild.executor import Executor
from elkbuild.vst3host.build import build_host, native_arch
from elkbuild.vst3host.run import plugin_binary, run_host

NON_BLOCKING = frozenset({"pthread_mutex_trylock"})
"""Counted and shown, but not unsafe: a try-lock never waits and never enters the
kernel (it is how an audio thread takes a lock the message thread may hold)."""
DEFAULT_WARMUP = 16
"""Blocks run before counting starts, like the start-up grace of `invoke monitor`."""
LATE_FRACTION = 0.001
"""Blocks over their deadline allowed, as a fraction: the check's thread is not
real-time scheduled and a shared machine preempts it now and then; a plugin that
is too slow misses (nearly) every block."""
WORKER_LATE_FRACTION = 0.05
"""Output samples a decoupled model's worker may miss, as a fraction: its thread
is not real-time scheduled here and a busy shared machine (a compiler on both
cores) makes it miss a few percent; a worker too slow for the model misses nearly
all of them."""
PASSTHROUGH_TOLERANCE = 1e-6
"""Output this close to the delayed input is the input passed through."""


@dataclass(frozen=True)
class Caller:
    at: str     # "object+0xoffset (symbol)"; symbol only when the object exports it
    calls: int

    @property
    def object(self) -> str:
        return self.at.split("+0x", 1)[0]


@dataclass(frozen=True)
class WorkerReport:
    """What the plugin's decoupled models' workers did over the judged blocks."""
    models: int = 0
    runs: int = 0
    failed_runs: int = 0
    underrun_samples: int = 0  # output samples (per model, per channel) that were zeros
    p99_us: float = 0.0        # one run: a model frame for all lanes
    max_us: float = 0.0
    budget_us: float = 0.0     # the run time the reported latency allows for

    @classmethod
    def between(cls, start: dict | None, end: dict | None) -> WorkerReport:
        """The judged blocks' share: the counts at the end less those after warm-up."""
        if not end:
            return cls()
        start = start or {}
        return cls(models=int(end["models"]), runs=int(end["runs"]) - int(start.get("runs", 0)),
                   failed_runs=int(end["failed_runs"]) - int(start.get("failed_runs", 0)),
                   underrun_samples=int(end["underrun_samples"]) - int(start.get("underrun_samples", 0)),
                   p99_us=float(end["p99_us"]), max_us=float(end["max_us"]),
                   budget_us=float(end["budget_us"]))


@dataclass(frozen=True)
class RtReport:
    bundle: Path
    plugin: str
    arch: str
    blocks: int
    block: int
    rate: float
    counts: dict[str, int]
    total: int
    p50_us: float
    p99_us: float
    max_us: float
    deadline_us: float
    overruns: int = 0            # blocks whose process() took longer than the deadline
    # Late blocks the plugin did not make late: the audio thread ran and waited for less
    # than the deadline, but was runnable and not running (a preempted unprivileged
    # thread, a virtual machine's stolen time). Shown, not judged: Elk's audio thread is
    # real-time and is not preempted so.
    stalls: int = 0
    process_failures: int = 0    # process() calls that did not return kResultOk
    # The first distinct call sites of each counted function (the host keeps 64).
    callers: dict[str, list[Caller]] = field(default_factory=dict)
    warmup_blocks: int = 0
    startup_calls: int = 0       # calls made during the warm-up blocks (not judged)
    latency_samples: int = 0
    # Max |output - input delayed by the latency| and max |output|, after the latency.
    passthrough_difference: float = 1.0
    output_peak: float = 1.0
    # Whether the output must differ from the input: an effect's (a classifier passes
    # its audio through on purpose and reports on MIDI).
    judge_output: bool = True
    # Decoupled models (elkrt's worker report; 0 models: none, or not an elkrt plugin).
    worker: WorkerReport = field(default_factory=WorkerReport)

    @property
    def unsafe(self) -> int:
        """Calls that can block or enter the kernel: what the verdict counts."""
        return sum(n for name, n in self.counts.items() if name not in NON_BLOCKING)

    @property
    def ok(self) -> bool:
        return self.unsafe == 0

    @property
    def offenders(self) -> dict[str, int]:
        return {name: n for name, n in self.counts.items() if n and name not in NON_BLOCKING}

    @property
    def engine_calls(self) -> int:
        """Unsafe calls recorded as made by an inference engine's own library."""
        return sum(caller.calls for name, sites in self.callers.items() if name not in NON_BLOCKING
                   for caller in sites if caller.object.startswith(ENGINE_LIBRARIES))

    @property
    def plugin_unsafe(self) -> int:
        """Unsafe calls not proven to come from the engine: the plugin's own code
        (template and JUCE), or call sites the host could not record."""
        return self.unsafe - self.engine_calls

    @property
    def late(self) -> bool:
        """More blocks over the deadline than a preempted check thread explains."""
        return self.overruns > LATE_FRACTION * self.blocks

    @property
    def worker_late(self) -> bool:
        """More output samples missing than a preempted worker explains."""
        return self.worker_late_fraction > WORKER_LATE_FRACTION

    @property
    def worker_late_fraction(self) -> float:
        judged = self.blocks * self.block * max(1, self.worker.models)
        return self.worker.underrun_samples / judged

    @property
    def passes_through(self) -> bool:
        return self.passthrough_difference < PASSTHROUGH_TOLERANCE

    @property
    def silent(self) -> bool:
        return self.output_peak == 0.0

    def problems(self, allow_engine: bool = False) -> list[str]:
        """What fails the verdict, one phrase each (empty: it passes)."""
        found = []
        judged = self.plugin_unsafe if allow_engine else self.unsafe
        if judged:
            what = "unsafe calls outside the engine" if allow_engine else "unsafe calls"
            found.append(f"{judged} {what} in {self.blocks} blocks")
        if self.late:
            found.append(f"{self.overruns} of {self.blocks} blocks over the {self.deadline_us:.1f} us "
                         f"deadline (p99 {self.p99_us:.1f} us, max {self.max_us:.1f} us)")
        if self.worker_late:
            found.append(f"the inference worker was late: {self.worker.underrun_samples} output samples "
                         f"({100 * self.worker_late_fraction:.1f} %) were zeros (inference p99 "
                         f"{self.worker.p99_us:.1f} us, max {self.worker.max_us:.1f} us per run against a "
                         f"budget of {self.worker.budget_us:.1f} us)")
        if self.worker.failed_runs:
            found.append(f"the model failed {self.worker.failed_runs} of {self.worker.runs} runs")
        if self.judge_output and self.passes_through:
            found.append("the output is the input passed through (delayed by the reported "
                         f"{self.latency_samples} samples): the model did not run")
        elif self.judge_output and self.silent:
            found.append("the output is silence: the model did not run")
        if self.process_failures:
            found.append(f"process() failed {self.process_failures} times")
        return found

    def passes(self, allow_engine: bool = False) -> bool:
        return not self.problems(allow_engine)

    @property
    def non_blocking(self) -> dict[str, int]:
        return {name: n for name, n in self.counts.items() if n and name in NON_BLOCKING}

    def calls_by_object(self, function: str) -> dict[str, int]:
        """Calls of one function per calling library, from the recorded call sites;
        calls from sites beyond the first 64 are left out."""
        objects: dict[str, int] = {}
        for caller in self.callers.get(function, []):
            objects[caller.object] = objects.get(caller.object, 0) + caller.calls
        return dict(sorted(objects.items(), key=lambda item: -item[1]))


def rt_check(bundle: Path, executor: Executor, build_dir: Path, *, blocks: int = 10000,
             block: int = 64, rate: float = 48000, arch: str | None = None,
             warmup: int = DEFAULT_WARMUP, judge_output: bool | None = None) -> RtReport:
    """Run `blocks` blocks of noise through the plugin on an audio thread and count
    the calls a real-time thread must not make inside process(). `judge_output`
    (default: when the bundle is an effect, i.e. carries its model's .roles file)
    fails an output that is silence or the input passed through."""
    arch = arch or native_arch()
    if blocks < 1 or block < 1:
        raise UsageError(f"blocks={blocks}, block={block}; both must be positive")
    plugin_binary(bundle, arch)
    build = build_host(executor, build_dir, arch)
    args = ["rtcheck", str(bundle), "--blocks", str(blocks), "--warmup", str(warmup),
            "--block", str(block), "--rate", str(rate)]
    found = run_host(executor, build, args, f"rt-check of {bundle}", preload=True)
    return RtReport(
        bundle=Path(bundle), plugin=found["name"], arch=arch, blocks=found["blocks"],
        block=found["block"], rate=float(found["rate"]), counts=dict(found["counts"]),
        total=int(found["total"]), p50_us=float(found["p50_us"]), p99_us=float(found["p99_us"]),
        max_us=float(found["max_us"]), deadline_us=float(found["deadline_us"]),
        overruns=int(found["overruns"]), stalls=int(found.get("stalls", 0)),
        process_failures=int(found["process_failures"]),
        callers={name: [Caller(c["at"], int(c["calls"])) for c in sites]
                 for name, sites in found.get("callers", {}).items()},
        warmup_blocks=int(found.get("warmup_blocks", 0)),
        startup_calls=int(found.get("startup_calls", 0)),
        latency_samples=int(found.get("latency_samples", 0)),
        passthrough_difference=float(found.get("passthrough_difference", 1.0)),
        output_peak=float(found.get("output_peak", 1.0)),
        worker=WorkerReport.between(found.get("worker_at_warmup"), found.get("worker")),
        judge_output=_is_effect(Path(bundle)) if judge_output is None else judge_output)


def _is_effect(bundle: Path) -> bool:
    """An effect's bundle carries the roles of its model's tensors (<model>.roles)."""
    return any(p.suffix == ".roles" for p in BundleLayout(bundle).resources.glob("*"))


def format_report(report: RtReport, allow_engine: bool = False) -> str:
    """A short table: the offending calls and which libraries made them, then timing."""
    lines = [f"rt-check {report.plugin} ({report.arch}): {report.blocks} blocks of "
             f"{report.block} samples at {report.rate:g} Hz"]
    if report.offenders:
        width = max(len(name) for name in report.offenders)
        lines.append(f"  {'call'.ljust(width)}  {'count':>9}  called from")
        for name, count in report.offenders.items():
            where = ", ".join(f"{obj} {n}" for obj, n in report.calls_by_object(name).items())
            lines.append(f"  {name.ljust(width)}  {count:>9}  {where or '?'}")
        lines.append(f"  {'unsafe'.ljust(width)}  {report.unsafe:>9}")
    else:
        lines.append("  no allocation, lock or condition-variable call on the audio thread")
    for name, count in report.non_blocking.items():
        lines.append(f"  {name}: {count} (never waits: allowed)")
    if report.warmup_blocks:
        lines.append(f"  warm-up: {report.startup_calls} calls in the first {report.warmup_blocks} "
                     "blocks (thread start-up, not judged)")
    lines.append(f"  process(): p50 {report.p50_us:.1f} us, p99 {report.p99_us:.1f} us, "
                 f"max {report.max_us:.1f} us; deadline {report.deadline_us:.1f} us "
                 f"({report.overruns} over"
                 + (f"; {report.stalls} more late while the host did not run the thread, not judged"
                    if report.stalls else "") + ")")
    if report.worker.models:
        lines.append(f"  inference worker ({report.worker.models} decoupled model(s), {report.worker.runs} runs): "
                     f"p99 {report.worker.p99_us:.1f} us, max {report.worker.max_us:.1f} us per run; "
                     f"budget {report.worker.budget_us:.1f} us; {report.worker.underrun_samples} samples late "
                     f"({100 * report.worker_late_fraction:.2f} %)")
    if report.process_failures:
        lines.append(f"  process() failed {report.process_failures} times")
    if report.engine_calls:
        lines.append(f"  of which the engine library made {report.engine_calls}: it allocates or "
                     "locks inside its own run call (ONNX Runtime does in every Session::Run)")
    if report.judge_output:
        lines.append(f"  output vs the input delayed by {report.latency_samples} samples: max "
                     f"difference {report.passthrough_difference:.3g} (peak {report.output_peak:.3g})")
    problems = report.problems(allow_engine)
    lines.append("  PASS" if not problems else f"  FAIL: {'; '.join(problems)}")
    return "\n".join(lines)
