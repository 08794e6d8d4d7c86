"""rt-check's deadline verdict tells a plugin that is late from a host that did not run
its audio thread. A plugin whose process() sleeps is late on every block and fails;
a plugin that works 0.6 ms of its 1.33 ms block on a CPU shared with four busy
processes is preempted mid-block (on Elk the audio thread is real-time and would
not be): those blocks are late by the clock but are shown as stalls, not judged.

One native build of a small effect (the example saturator model, decoupled) whose
processor code is edited as a user's own would be, to sleep or spin as the
environment says: about 30 s with JUCE's objects reused, two rt-checks of 1000
blocks (about 2 s each)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from native_fixtures import require_native_build_tools

from elkbuild.config import load_config
from elkbuild.executor import LocalExecutor
from elkbuild.plugin.example_models import saturator_onnx_bytes
from elkbuild.plugin.native_build import NativeBuild, build_native
from elkbuild.plugin.render import NewPlugin, new_plugin
from elkbuild.vst3host.rt_check import format_report, rt_check

REPO = Path(__file__).resolve().parents[2]
BLOCKS = 1000

pytestmark = pytest.mark.slow

# Read when the host loads the plugin, never on the audio thread.
HOLD = """
#include <chrono>
#include <cstdlib>
#include <unistd.h>

namespace
{
long microsFromEnvironment (const char* name)
{
    const char* text = std::getenv (name);
    return text != nullptr ? std::atol (text) : 0;
}
const long holdSleepMicros = microsFromEnvironment ("ELKBUILD_TEST_SLEEP_US");
const long holdSpinMicros = microsFromEnvironment ("ELKBUILD_TEST_SPIN_US");

void hold()
{
    if (holdSleepMicros > 0)
        usleep (static_cast<useconds_t> (holdSleepMicros));
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds (holdSpinMicros);
    while (holdSpinMicros > 0 && std::chrono::steady_clock::now() < until)
        ;
}
}

"""


@pytest.fixture(scope="module")
def holding_build(tmp_path_factory) -> NativeBuild:
    require_native_build_tools()
    cache = load_config(REPO).cache_dir
    model = tmp_path_factory.mktemp("hold") / "saturator.onnx"
    model.write_bytes(saturator_onnx_bytes())
    # Decoupled: ONNX Runtime allocates inside every run, and an allocation may wait;
    # on the worker it leaves the audio thread with only the hold and moving samples.
    project = new_plugin(NewPlugin("HoldingSaturator", "onnx", "effect", model, mode="decoupled"),
                         cache / "test-builds" / "stall-projects", force=True)
    source = project.root / "Source" / "PluginProcessor.cpp"
    text = source.read_text()
    marker = "juce::ScopedNoDenormals noDenormals;"
    head, body = text.split("\nvoid ", 1)
    assert marker in body, "the effect's processBlock starts with its denormal guard"
    source.write_text(head + HOLD + "\nvoid " + body.replace(marker, marker + "\n    hold();", 1))
    built = build_native(project.root, LocalExecutor(), cache, cache / "test-builds", jobs=2)
    print(f"HoldingSaturator built in {built.seconds:.1f} s")
    return built


def test_a_plugin_that_sleeps_in_process_is_late_not_stalled(holding_build: NativeBuild, host_dir: Path,
                                                               monkeypatch):
    monkeypatch.setenv("ELKBUILD_TEST_SLEEP_US", "2000")
    report = rt_check(holding_build.bundle, LocalExecutor(), host_dir, blocks=BLOCKS)
    print(format_report(report))
    assert report.overruns == BLOCKS and report.stalls == 0 and report.late
    assert not report.passes(allow_engine=True)


def test_a_preempted_audio_thread_is_a_stall_not_a_late_plugin(holding_build: NativeBuild, host_dir: Path,
                                                               monkeypatch):
    monkeypatch.setenv("ELKBUILD_TEST_SPIN_US", "600")
    cpu = min(os.sched_getaffinity(0))
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(4)]
    before = os.sched_getaffinity(0)
    try:
        for process in busy:
            os.sched_setaffinity(process.pid, {cpu})
        os.sched_setaffinity(0, {cpu})   # the host and its audio thread inherit it
        report = rt_check(holding_build.bundle, LocalExecutor(), host_dir, blocks=BLOCKS)
    finally:
        os.sched_setaffinity(0, before)
        for process in busy:
            process.kill()
            process.wait()
    text = format_report(report)
    print(text)
    # Sharing one CPU with four busy processes, the thread gets about a fifth of it
    # and needs 45 %: most blocks are preempted past the deadline, none by the plugin.
    assert report.stalls > 0.1 * BLOCKS, text
    assert report.overruns == 0 and not report.late, text
    assert report.max_us > report.deadline_us
    assert "more late while the host did not run the thread, not judged" in text
