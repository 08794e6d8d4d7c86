"""Rendered plugins of one kind compile JUCE's modules with one command line, so
ccache hands a second plugin the first one's module objects: their identity reaches
only the plugin's own sources, JUCE's plugin utilities and the VST3 wrapper."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import require_real_part

from elkbuild.build import cmake
from elkbuild.build.juce import patched_juce
from elkbuild.config import load_config
from elkbuild.executor import LocalExecutor, installed
from elkbuild.plugin import example_models
from elkbuild.plugin.native_build import native_engine
from elkbuild.plugin.project import PluginProject
from elkbuild.plugin.render import NewPlugin, new_plugin

REPO = Path(__file__).resolve().parents[2]
MODULES = ("juce_core", "juce_events", "juce_data_structures", "juce_graphics", "juce_gui_basics",
           "juce_gui_extra", "juce_audio_basics", "juce_audio_processors")


def _configure(project: PluginProject, build_root: Path) -> Path:
    executor, cache = LocalExecutor(), load_config(REPO).cache_dir
    build_dir = build_root / "native" / project.identity.name
    executor.run(cmake.configure_argv(project.root, build_dir, engine=native_engine("onnx", executor, cache),
                                      model=project.model, juce_dir=patched_juce(executor, cache),
                                      model_roles=cmake.write_model_roles(project, build_dir),
                                      generator="Ninja", ccache=True))
    return build_dir


def _commands(build_dir: Path) -> dict[str, str]:
    """Source file name -> its DEFINES, INCLUDES and FLAGS (what ccache hashes)."""
    text = (build_dir / "build.ninja").read_text()
    found = {}
    for block in re.finditer(r"^build \S+\.o: \w*COMPILER__\S+ (\S+)[^\n]*\n((?:  .*\n)+)", text, re.M):
        fields = dict(re.findall(r"^  (DEFINES|INCLUDES|FLAGS) = (.*)$", block.group(2), re.M))
        line = " ".join(fields.get(k, "") for k in ("DEFINES", "INCLUDES", "FLAGS"))
        found[Path(block.group(1)).name] = line
    return found


def test_two_plugins_of_a_kind_compile_juce_modules_alike(tmp_path):
    require_real_part(installed("ninja") and installed("cmake"), "CMake and Ninja",
                      "apt-get install cmake ninja-build")
    model = example_models.write_examples(tmp_path / "models")["saturator.onnx"]
    first = new_plugin(NewPlugin("Fuzz", "onnx", "effect", model, description="one"), tmp_path / "a")
    second = new_plugin(NewPlugin("Crunch", "onnx", "effect", model, description="another",
                                  manufacturer="Someone Else", manufacturer_code="Smel",
                                  plugin_code="Cr01"), tmp_path / "b")
    # Build folders at different depths: nothing in the modules' commands names them.
    one = _commands(_configure(first, tmp_path / "builds"))
    two = _commands(_configure(second, tmp_path / "other" / "builds"))
    rules = (tmp_path / "builds" / "native" / "Fuzz" / "CMakeFiles" / "rules.ninja").read_text()
    assert f"command = {cmake.CCACHE_LAUNCHER.replace(';', ' ')} /usr/bin/c++ " in rules

    module_sources = [s for s in one if s.removesuffix(".cpp").startswith(MODULES)]
    assert {f"{m}.cpp" for m in MODULES} <= set(module_sources)
    for source in module_sources:
        assert one[source] == two[source], source
        assert "JucePlugin_Name" not in one[source] and "Fuzz" not in one[source], source
    # The structural settings of the kind stay on the modules (some of them read them).
    assert "-DJucePlugin_IsSynth=0" in one["juce_audio_processors.cpp"]
    # The identity still reaches what reads it.
    for source in ("PluginProcessor.cpp", "juce_audio_plugin_client_utils.cpp",
                   "juce_audio_plugin_client_VST3.cpp"):
        assert '-DJucePlugin_Name=\\"Fuzz\\"' in one[source], source
        assert '-DJucePlugin_Name=\\"Crunch\\"' in two[source], source
        assert "-DJucePlugin_PluginCode=0x43723031" in two[source], source
    assert str(tmp_path) not in one["juce_core.cpp"] and "JuceLibraryCode" not in one["juce_core.cpp"]
