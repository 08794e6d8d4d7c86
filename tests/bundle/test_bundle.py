"""Board profiles, bundle assembly and the ABI gate, on real ELF files.

Every shared object here is compiled in the test by the real compilers: the
aarch64 cross compiler (Debian's gcc-aarch64-linux-gnu, glibc 2.36 and GCC 12's
libstdc++) and the host gcc for the x86_64 intruder.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pytest
from conftest import require_real_part

from elkbuild.bundle.abi_gate import NotDeployable, check_bundle, require_deployable
from elkbuild.build.profiles import BoardProfile, get_board_profile, load_board_profiles
from elkbuild.bundle.assemble import assemble_bundle
from elkbuild.elf import read_elf
from elkbuild.errors import BuildError, ConfigError, UsageError
from elkbuild.executor import LocalExecutor

CROSS_CC = "aarch64-linux-gnu-gcc"
CROSS_CXX = "aarch64-linux-gnu-g++"
HOST_CC = "gcc"

ENTRY_POINTS = """
__attribute__((visibility("default"))) void *GetPluginFactory(void) { return 0; }
__attribute__((visibility("default"))) int ModuleEntry(void *handle) { return handle != 0; }
__attribute__((visibility("default"))) int ModuleExit(void) { return 1; }
"""


def _profile(name: str) -> BoardProfile:
    return get_board_profile(name)


# ---- building real ELF files -----------------------------------------------------

def _need(program: str) -> None:
    require_real_part(shutil.which(program) is not None, program,
                      "apt-get install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu gcc")


@dataclass
class Compiler:
    scratch: Path
    executor: LocalExecutor

    def shared(self, out: Path, source: str, *, cc: str = CROSS_CC, soname: str | None = None,
               libs: Sequence[str] = (), lib_dirs: Sequence[Path] = (), origin: bool = True,
               lang: str = "c") -> Path:
        """A shared object from `source`, linked the way JUCE links a plugin."""
        _need(cc)
        src = self.scratch / f"{out.name}.{lang}"
        src.write_text(textwrap.dedent(source))
        out.parent.mkdir(parents=True, exist_ok=True)
        argv = [cc, "-shared", "-fPIC", "-O1", "-o", str(out), str(src)]
        if soname:
            argv.append(f"-Wl,-soname,{soname}")
        if origin:
            argv += ["-Wl,-rpath,$ORIGIN", "-Wl,--enable-new-dtags"]
        argv += [f"-L{d}" for d in lib_dirs] + [f"-l{lib}" for lib in libs]
        self.executor.run(argv)
        return out

    def library(self, folder: Path, stem: str, major: int, source: str, **kwargs: object) -> Path:
        """lib<stem>.so.<major>.0.0 with its SONAME link and the -l link, as a staged prefix has."""
        soname = f"lib{stem}.so.{major}"
        real = self.shared(folder / f"{soname}.0.0", source, soname=soname, **kwargs)
        for link in (folder / soname, folder / f"lib{stem}.so"):
            link.unlink(missing_ok=True)
            link.symlink_to(real.name)
        return real


@pytest.fixture(scope="module")
def compiler(tmp_path_factory: pytest.TempPathFactory) -> Compiler:
    return Compiler(tmp_path_factory.mktemp("src"), LocalExecutor())


@pytest.fixture(scope="module")
def deps_lib(compiler: Compiler, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A staged dependency's lib/: libengine.so.1, which needs libdsp.so.2 (transitively)."""
    lib = tmp_path_factory.mktemp("deps") / "engine-1.0" / "lib"
    compiler.library(lib, "dsp", 2, "float dsp_gain(float x) { return 0.5f * x; }\n")
    compiler.library(lib, "engine", 1, """
        float dsp_gain(float x);
        float engine_process(float x) { return dsp_gain(x); }
    """, libs=["dsp"], lib_dirs=[lib])
    return lib


def _plugin_source(extra: str = "", entry_points: bool = True) -> str:
    return ("float engine_process(float x);\n"
            "float plugin_process(float x) { return engine_process(x); }\n"
            + (ENTRY_POINTS if entry_points else "") + textwrap.dedent(extra))


def _built(root: Path, compiler: Compiler, deps_lib: Path, *, name: str = "Saturator",
           arch_dir: str = "aarch64-linux", source: str | None = None, cc: str = CROSS_CC,
           libs: tuple[str, ...] = ("engine",), lib_dirs: tuple[Path, ...] = (),
           origin: bool = True, lang: str = "c") -> Path:
    """A JUCE-shaped build output: <root>/<Name>.vst3/Contents/<arch_dir>/<Name>.so."""
    bundle = root / f"{name}.vst3"
    compiler.shared(bundle / "Contents" / arch_dir / f"{name}.so",
                    source if source is not None else _plugin_source(), cc=cc,
                    libs=list(libs), lib_dirs=[deps_lib, *lib_dirs], origin=origin, lang=lang)
    return bundle


def _messages(bundle: Path, profile: str) -> list[str]:
    return [str(p) for p in check_bundle(bundle, _profile(profile))]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "saturator.onnx"
    path.write_bytes(b"\x08\x07onnx-model-bytes")
    return path


# ---- board profiles --------------------------------------------------------------

def test_profiles_hold_the_elk_releases_and_the_emulated_board():
    profiles = load_board_profiles()
    assert set(profiles) == {"elk-0.11", "elk-1.x", "emulated", "emulated-0.11"}
    abis = {name: (p.abi.glibc, p.abi.glibcxx) for name, p in profiles.items()}
    assert abis == {"elk-0.11": ("2.31", "3.4.28"), "elk-1.x": ("2.35", "3.4.29"),
                    "emulated": ("2.36", "3.4.30"), "emulated-0.11": ("2.31", "3.4.28")}
    assert profiles["elk-0.11"].abi_inferred and profiles["elk-1.x"].abi_inferred
    assert not profiles["emulated"].abi_inferred and not profiles["emulated-0.11"].abi_inferred
    for profile in profiles.values():
        assert profile.arch == "aarch64" and profile.bundle_arch_dir == "aarch64-linux"
        assert {"libc.so.6", "libstdc++.so.6", "libasound.so.2", "ld-linux-aarch64.so.1"} <= profile.system_libraries
        # A headless image lacks these: the gate must flag them unless bundled.
        assert not {"libX11.so.6", "libfreetype.so.6", "libpng16.so.16", "libjpeg.so.62",
                    "libcurl.so.4"} & profile.system_libraries
    assert profiles["elk-0.11"].os_version == "0.11" and profiles["elk-1.x"].os_version == "1.x"


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(UsageError) as caught:
        get_board_profile("elk-0.10")
    assert "elk-0.11" in caught.value.one_line() and "elk-1.x" in caught.value.one_line()


GOOD_PROFILE = """
board:
  arch: aarch64
  abi: {glibc: "2.35", glibcxx: "3.4.29"}
  system_libraries: [libc.so.6]
"""


@pytest.mark.parametrize("text, key, words", [
    (GOOD_PROFILE.replace("arch: aarch64", "arch: armv7"), "board.arch", "allowed"),
    (GOOD_PROFILE.replace('glibc: "2.35"', "glibc: 2.30"), "board.abi.glibc", "quoted"),
    (GOOD_PROFILE.replace('abi: {glibc: "2.35", glibcxx: "3.4.29"}', 'abi: {glibc: "2.35"}'),
     "board.abi", "glibcxx"),
    (GOOD_PROFILE.replace("[libc.so.6]", "[libc.so.6, X11]"), "board.system_libraries[1]", "SONAME"),
    (GOOD_PROFILE.replace("[libc.so.6]", "[]"), "board.system_libraries", "non-empty"),
    (GOOD_PROFILE.replace("  arch: aarch64\n", ""), "board.arch", "required"),
    (GOOD_PROFILE + "  glibc: '2.35'\n", "board.glibc", "unknown key"),
    (GOOD_PROFILE + "  abi_source: guessed\n", "board.abi_source", "inferred"),
    ("- just\n- a list\n", "", "must map board profile names"),
    ("board: [unclosed\n", "", "not valid YAML"),
])
def test_a_bad_profile_file_is_one_line_naming_file_and_key(tmp_path: Path, text: str, key: str,
                                                            words: str):
    path = tmp_path / "profiles.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_board_profiles(path)
    line = caught.value.one_line()
    assert "\n" not in line and str(path) in line and words in line
    assert caught.value.key == key


def test_a_profile_file_is_read_again_when_it_changes(tmp_path: Path):
    path = tmp_path / "profiles.yaml"
    path.write_text(GOOD_PROFILE)
    assert get_board_profile("board", path).abi.glibc == "2.35"
    path.write_text(GOOD_PROFILE.replace('"2.35"', '"2.31"'))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert get_board_profile("board", path).abi.glibc == "2.31"


# ---- assembly and a bundle that passes -----------------------------------------------

def test_assembled_bundle_carries_its_libraries_and_passes_the_gate(tmp_path: Path, compiler: Compiler,
                                                                    deps_lib: Path, model: Path):
    built = _built(tmp_path / "build", compiler, deps_lib)
    out = tmp_path / "bundles"
    bundle = assemble_bundle(built, out, library_dirs=[tmp_path / "nothing-here", deps_lib],
                             model=model, profile=_profile("elk-1.x"))

    code = out / "Saturator.vst3" / "Contents" / "aarch64-linux"
    assert bundle.path == out / "Saturator.vst3"
    assert bundle.binary == code / "Saturator.so"
    # libdsp.so.2 is needed by libengine only: the walk is transitive.
    assert bundle.libraries == (code / "libengine.so.1", code / "libdsp.so.2")
    for library in bundle.libraries:
        assert library.is_file() and not library.is_symlink()  # the real file, under its SONAME
        assert read_elf(library).soname == library.name
    assert bundle.model == out / "Saturator.vst3" / "Contents" / "Resources" / "saturator.onnx"
    assert bundle.model.read_bytes() == model.read_bytes()
    assert bundle.unresolved == () and bundle.notes == ()
    assert [p.name for p in out.iterdir()] == ["Saturator.vst3"]  # no temp folder left
    assert check_bundle(bundle.path, _profile("elk-1.x")) == []
    assert check_bundle(bundle.path, _profile("emulated")) == []
    require_deployable(bundle.path, _profile("elk-0.11"))  # C only, GLIBC_2.17: fits 0.11 too


def test_assembling_again_replaces_the_bundle_and_a_failure_leaves_it(tmp_path: Path, compiler: Compiler,
                                                                      deps_lib: Path, model: Path):
    built = _built(tmp_path / "build", compiler, deps_lib)
    out = tmp_path / "bundles"
    first = assemble_bundle(built, out, library_dirs=[deps_lib], model=model, profile=_profile("elk-1.x"))
    stray = first.path / "Contents" / "Resources" / "old-model.onnx"
    stray.write_text("stale")
    assemble_bundle(built, out, library_dirs=[deps_lib], model=None, profile=_profile("elk-1.x"))
    assert not stray.exists() and not (first.path / "Contents" / "Resources" / "saturator.onnx").exists()

    broken = tmp_path / "broken" / "Saturator.vst3"
    (broken / "Contents" / "x86_64-linux").mkdir(parents=True)
    with pytest.raises(BuildError) as caught:
        assemble_bundle(broken, out, library_dirs=[deps_lib], model=None, profile=_profile("elk-1.x"))
    assert "Contents/aarch64-linux/Saturator.so" in caught.value.one_line()
    assert "x86_64-linux" in caught.value.one_line()
    assert (first.binary).is_file() and [p.name for p in out.iterdir()] == ["Saturator.vst3"]


def test_a_library_the_build_already_bundled_is_kept_and_walked(tmp_path: Path, compiler: Compiler,
                                                               deps_lib: Path):
    built = _built(tmp_path / "build", compiler, deps_lib)
    code = built / "Contents" / "aarch64-linux"
    shutil.copy2(deps_lib / "libengine.so.1", code / "libengine.so.1")  # as the ORT library is
    bundle = assemble_bundle(built, tmp_path / "out", library_dirs=[deps_lib], model=None,
                             profile=_profile("elk-1.x"))
    assert [p.name for p in bundle.libraries] == ["libdsp.so.2"]
    assert (bundle.binary.parent / "libengine.so.1").is_file()
    assert check_bundle(bundle.path, _profile("elk-1.x")) == []


def test_the_process_wide_pool_library_passes_the_gate_as_a_bundled_library(tmp_path: Path, compiler: Compiler,
                                                                           deps_lib: Path):
    """libelkrt_pool.so.1 as the plugin template bundles it: the real runtime sources,
    cross-compiled, next to a plugin that needs it through RUNPATH $ORIGIN."""
    _need(CROSS_CXX)
    runtime = Path(__file__).resolve().parents[2] / "runtime"
    pool_dir = tmp_path / "pool"
    pool_dir.mkdir()
    pool = pool_dir / "libelkrt_pool.so.1"
    LocalExecutor().run([CROSS_CXX, "-shared", "-fPIC", "-O1", "-std=c++17", "-fvisibility=hidden", "-pthread",
                         f"-I{runtime / 'include'}", "-o", str(pool), str(runtime / "src" / "pool_library.cpp"),
                         str(runtime / "src" / "inference_pool.cpp"), "-Wl,-soname,libelkrt_pool.so.1",
                         f"-Wl,--version-script={runtime / 'src' / 'pool_library.map'}"])
    (pool_dir / "libelkrt_pool.so").symlink_to(pool.name)
    source = _plugin_source("""
        const void* elkrt_pool_open(unsigned wanted, unsigned* spoken);
        const void* plugin_pool(void) { return elkrt_pool_open(1u, 0); }
    """)
    built = _built(tmp_path / "build", compiler, deps_lib, source=source, libs=("engine", "elkrt_pool"),
                   lib_dirs=(pool_dir,))
    code = built / "Contents" / "aarch64-linux"
    shutil.copy2(pool, code / "libelkrt_pool.so.1")  # the template's POST_BUILD copy
    bundle = assemble_bundle(built, tmp_path / "out", library_dirs=[deps_lib], model=None,
                             profile=_profile("elk-1.x"))
    assert "libelkrt_pool.so.1" in read_elf(bundle.binary).needed
    assert (bundle.binary.parent / "libelkrt_pool.so.1").is_file()
    assert check_bundle(bundle.path, _profile("elk-1.x")) == []
    assert check_bundle(bundle.path, _profile("emulated")) == []
    # Without the copy the gate names it.
    (bundle.binary.parent / "libelkrt_pool.so.1").unlink()
    assert any("needs libelkrt_pool.so.1" in m for m in _messages(bundle.path, "elk-1.x"))


# ---- broken bundles -----------------------------------------------------------------

def test_an_arm64_linux_folder_is_renamed_by_assembly_and_fails_the_gate_unassembled(
        tmp_path: Path, compiler: Compiler, deps_lib: Path):
    built = _built(tmp_path / "build", compiler, deps_lib, arch_dir="arm64-linux")
    (built / "Contents" / "arm64-linux" / "libengine.so.1").write_bytes(
        (deps_lib / "libengine.so.1").read_bytes())
    (built / "Contents" / "arm64-linux" / "libdsp.so.2").write_bytes((deps_lib / "libdsp.so.2").read_bytes())
    messages = _messages(built, "elk-1.x")
    assert messages == ["Contents/arm64-linux: Sushi needs Contents/aarch64-linux, not arm64-linux "
                        "(older JUCE's name): rename it, as the bundle step does"]
    with pytest.raises(NotDeployable) as caught:
        require_deployable(built, _profile("elk-1.x"))
    assert isinstance(caught.value, BuildError) and caught.value.problems == messages

    bundle = assemble_bundle(built, tmp_path / "out", library_dirs=[deps_lib], model=None,
                             profile=_profile("elk-1.x"))
    assert bundle.binary == tmp_path / "out" / "Saturator.vst3" / "Contents" / "aarch64-linux" / "Saturator.so"
    assert not (bundle.path / "Contents" / "arm64-linux").exists()
    assert check_bundle(bundle.path, _profile("elk-1.x")) == []


def test_an_x86_64_library_inside_is_named_with_its_machine(tmp_path: Path, compiler: Compiler,
                                                            deps_lib: Path):
    bundle = assemble_bundle(_built(tmp_path / "build", compiler, deps_lib), tmp_path / "out",
                             library_dirs=[deps_lib], model=None, profile=_profile("elk-1.x")).path
    compiler.shared(bundle / "Contents" / "aarch64-linux" / "libhelper.so", "int helper(void) { return 1; }\n",
                    cc=HOST_CC)
    problems = check_bundle(bundle, _profile("elk-1.x"))
    assert [(p.file, p.rule) for p in problems] == [("Contents/aarch64-linux/libhelper.so", "arch")]
    assert "x86_64 (EM_X86_64)" in problems[0].message and "runs aarch64 (EM_AARCH64)" in problems[0].message


def test_a_native_build_is_refused_by_assembly_and_by_the_gate(tmp_path: Path, compiler: Compiler,
                                                              deps_lib: Path):
    _need(HOST_CC)
    host_lib = tmp_path / "host-lib"
    compiler.library(host_lib, "engine", 1, "float engine_process(float x) { return x; }\n", cc=HOST_CC)
    built = tmp_path / "build" / "Saturator.vst3"
    compiler.shared(built / "Contents" / "x86_64-linux" / "Saturator.so", _plugin_source(), cc=HOST_CC,
                    libs=["engine"], lib_dirs=[host_lib])
    messages = _messages(built, "elk-1.x")
    assert messages[0] == ("Contents/aarch64-linux: is missing (it has Contents/x86_64-linux): the bundle "
                           "has no code for aarch64; build the plugin with an aarch64 toolchain")
    assert any(m.startswith("Contents/x86_64-linux/Saturator.so: is an ELF for x86_64") for m in messages)
    with pytest.raises(BuildError, match="no Contents/aarch64-linux/Saturator.so"):
        assemble_bundle(built, tmp_path / "out", library_dirs=[host_lib], model=None,
                        profile=_profile("elk-1.x"))


def test_a_too_new_glibc_names_file_version_symbol_and_board(tmp_path: Path, compiler: Compiler,
                                                             deps_lib: Path):
    # pthread_create moved into libc in glibc 2.34: the host's bookworm cross compiler
    # (2.36) binds it there.
    source = _plugin_source("""
        #include <pthread.h>
        static void *run(void *arg) { return arg; }
        int start_worker(void) { pthread_t t; return pthread_create(&t, 0, run, 0); }
    """)
    built = _built(tmp_path / "build", compiler, deps_lib, source=source)
    bundle = assemble_bundle(built, tmp_path / "out", library_dirs=[deps_lib], model=None,
                             profile=_profile("elk-0.11")).path
    assert check_bundle(bundle, _profile("elk-1.x")) == []  # 2.35 >= 2.34
    problems = check_bundle(bundle, _profile("elk-0.11"))
    assert [(p.file, p.rule) for p in problems] == [("Contents/aarch64-linux/Saturator.so", "glibc")]
    assert problems[0].message == ("needs GLIBC_2.34 (e.g. pthread_create); the elk-0.11 board has glibc "
                                   "2.31 (inferred): rebuild it with elk-sdk-0.11.0 or debian-arm64")


def test_a_too_new_libstdcxx_names_the_glibcxx_version(tmp_path: Path, compiler: Compiler, deps_lib: Path):
    _need(CROSS_CXX)
    # GCC 12's libstdc++ binds condition_variable::wait(unique_lock&) at GLIBCXX_3.4.30.
    source = """
        #include <condition_variable>
        #include <mutex>
        std::mutex lock_; std::condition_variable ready_;
        extern "C" float engine_process(float x);
        extern "C" {
        __attribute__((visibility("default"))) void *GetPluginFactory() { return nullptr; }
        __attribute__((visibility("default"))) int ModuleEntry(void *h) { return h != nullptr; }
        __attribute__((visibility("default"))) int ModuleExit() { return 1; }
        }
        float wait_then_process(float x) {
            std::unique_lock<std::mutex> held(lock_);
            ready_.wait(held);
            return engine_process(x);
        }
    """
    built = _built(tmp_path / "build", compiler, deps_lib, source=source, cc=CROSS_CXX, lang="cpp")
    bundle = assemble_bundle(built, tmp_path / "out", library_dirs=[deps_lib], model=None,
                             profile=_profile("elk-1.x")).path
    assert check_bundle(bundle, _profile("emulated")) == []
    problems = check_bundle(bundle, _profile("elk-1.x"))
    assert [(p.file, p.rule) for p in problems] == [("Contents/aarch64-linux/Saturator.so", "glibcxx")]
    message = problems[0].message
    assert message.startswith("needs GLIBCXX_3.4.30 (e.g. _ZNSt18condition_variable4wait")
    assert "the elk-1.x board has libstdc++ 3.4.29 (inferred): rebuild it with elk-sdk-1.1.0 or" in message


def test_a_missing_library_is_named_with_the_file_that_needs_it(tmp_path: Path, compiler: Compiler,
                                                               deps_lib: Path):
    elsewhere = tmp_path / "not-staged"
    compiler.library(elsewhere, "missing", 1, "int missing_fn(void) { return 2; }\n")
    source = _plugin_source("int missing_fn(void);\nint use_missing(void) { return missing_fn(); }\n")
    built = _built(tmp_path / "build", compiler, deps_lib, source=source, libs=("engine", "missing"),
                   lib_dirs=(elsewhere,))
    bundle = assemble_bundle(built, tmp_path / "out", library_dirs=[deps_lib], model=None,
                             profile=_profile("elk-1.x"))
    assert bundle.unresolved == ("libmissing.so.1",)
    messages = _messages(bundle.path, "elk-1.x")
    assert messages == ["Contents/aarch64-linux/Saturator.so: needs libmissing.so.1, which is neither in "
                        "the bundle nor a system library of the elk-1.x board: stage the library that "
                        "provides it and pass its lib/ folder to the bundle step, so it is copied next "
                        "to the plugin"]


def test_gui_libraries_get_the_headless_hint(tmp_path: Path, compiler: Compiler, deps_lib: Path):
    desktop = tmp_path / "desktop-lib"
    # Stand-ins with the SONAMEs Debian's JUCE and a GUI build would need.
    compiler.shared(desktop / "libX11.so.6", "int XOpenDisplay(void) { return 0; }\n", soname="libX11.so.6")
    compiler.shared(desktop / "libpng16.so.16", "int png_sig_cmp(void) { return 0; }\n",
                    soname="libpng16.so.16")
    source = _plugin_source("int XOpenDisplay(void); int png_sig_cmp(void);\n"
                            "int gui(void) { return XOpenDisplay() + png_sig_cmp(); }\n")
    built = _built(tmp_path / "build", compiler, deps_lib, source=source,
                   libs=("engine", ":libX11.so.6", ":libpng16.so.16"), lib_dirs=(desktop,))
    bundle = assemble_bundle(built, tmp_path / "out", library_dirs=[deps_lib], model=None,
                             profile=_profile("elk-1.x"))
    assert set(bundle.unresolved) == {"libX11.so.6", "libpng16.so.16"}
    by_soname = {p.message.split(",")[0]: p.message for p in check_bundle(bundle.path, _profile("elk-1.x"))}
    assert "a headless Elk image has no X11/GUI libraries" in by_soname["needs libX11.so.6"]
    assert "Debian's JUCE links the system libpng" in by_soname["needs libpng16.so.16"]

    # Bundled from a staged prefix, libpng passes: only the system list is fixed.
    bundle = assemble_bundle(built, tmp_path / "out", library_dirs=[deps_lib, desktop], model=None,
                             profile=_profile("elk-1.x"))
    assert {p.name for p in bundle.libraries} >= {"libpng16.so.16", "libX11.so.6"}
    assert check_bundle(bundle.path, _profile("elk-1.x")) == []


def test_no_vst3_entry_points_is_named(tmp_path: Path, compiler: Compiler, deps_lib: Path):
    source = _plugin_source("__attribute__((visibility(\"default\"))) int ModuleEntry(void *h) { return 1; }\n"
                            "__attribute__((visibility(\"default\"))) int ModuleExit(void) { return 1; }\n"
                            "__attribute__((visibility(\"hidden\"))) void *GetPluginFactory(void) { return 0; }\n",
                            entry_points=False)
    bundle = assemble_bundle(_built(tmp_path / "build", compiler, deps_lib, source=source),
                             tmp_path / "out", library_dirs=[deps_lib], model=None,
                             profile=_profile("elk-1.x")).path
    assert _messages(bundle, "elk-1.x") == [
        "Contents/aarch64-linux/Saturator.so: does not export the function GetPluginFactory, so Sushi "
        "cannot load it as a VST3 plugin: build the JUCE <Name>_VST3 target and keep its entry points visible"]


def test_a_plugin_without_runpath_origin_is_reported_and_fails(tmp_path: Path, compiler: Compiler,
                                                               deps_lib: Path):
    built = _built(tmp_path / "build", compiler, deps_lib, origin=False)
    bundle = assemble_bundle(built, tmp_path / "out", library_dirs=[deps_lib], model=None,
                             profile=_profile("elk-1.x"))
    assert len(bundle.notes) == 1
    assert bundle.notes[0].startswith("Contents/aarch64-linux/Saturator.so: RUNPATH is not set, not $ORIGIN")
    messages = _messages(bundle.path, "elk-1.x")
    assert messages == ["Contents/aarch64-linux/Saturator.so: needs libengine.so.1, which is in the bundle "
                        "(Contents/aarch64-linux/libengine.so.1) but its RUNPATH (not set) does not reach "
                        "it: link it with -Wl,-rpath,'$ORIGIN' -Wl,--enable-new-dtags "
                        "(CMake: BUILD_WITH_INSTALL_RPATH ON, INSTALL_RPATH $ORIGIN)"]


def test_runpath_is_not_inherited_but_a_library_loaded_first_is_shared(tmp_path: Path, compiler: Compiler):
    # libengine without $ORIGIN: its own need libdsp.so.2 is not found next to it...
    lib = tmp_path / "lib"
    compiler.library(lib, "dsp", 2, "float dsp_gain(float x) { return x; }\n")
    compiler.library(lib, "engine", 1, "float dsp_gain(float x);\nfloat engine_process(float x) "
                     "{ return dsp_gain(x); }\n", libs=["dsp"], lib_dirs=[lib], origin=False)
    bundle = assemble_bundle(_built(tmp_path / "build", compiler, lib), tmp_path / "out",
                             library_dirs=[lib], model=None, profile=_profile("elk-1.x"))
    assert _messages(bundle.path, "elk-1.x") == [
        "Contents/aarch64-linux/libengine.so.1: needs libdsp.so.2, which is in the bundle "
        "(Contents/aarch64-linux/libdsp.so.2) but its RUNPATH (not set) does not reach it: link it "
        "with -Wl,-rpath,'$ORIGIN' -Wl,--enable-new-dtags (CMake: BUILD_WITH_INSTALL_RPATH ON, "
        "INSTALL_RPATH $ORIGIN)"]
    assert bundle.notes and bundle.notes[0].startswith("Contents/aarch64-linux/libengine.so.1: RUNPATH")

    # ...unless the plugin needs libdsp.so.2 itself: the loader goes breadth first and
    # a SONAME already loaded serves every later request.
    direct = _built(tmp_path / "build-direct", compiler, lib, libs=("engine", "dsp"), source=_plugin_source(
        "float dsp_gain(float x);\nfloat dry(float x) { return dsp_gain(x); }\n"))
    assert read_elf(direct / "Contents" / "aarch64-linux" / "Saturator.so").needed[:2] == (
        "libengine.so.1", "libdsp.so.2")
    bundle = assemble_bundle(direct, tmp_path / "out-direct", library_dirs=[lib], model=None,
                             profile=_profile("elk-1.x"))
    assert check_bundle(bundle.path, _profile("elk-1.x")) == []


def test_patchelf_fixes_the_runpath_when_installed(tmp_path: Path, compiler: Compiler, deps_lib: Path):
    require_real_part(shutil.which("patchelf") is not None, "patchelf", "apt-get install patchelf")
    built = _built(tmp_path / "build", compiler, deps_lib, origin=False)
    bundle = assemble_bundle(built, tmp_path / "out", library_dirs=[deps_lib], model=None,
                             profile=_profile("elk-1.x"), executor=LocalExecutor())
    assert bundle.notes == ()
    assert read_elf(bundle.binary).runpath == ("$ORIGIN",)
    assert read_elf(built / "Contents" / "aarch64-linux" / "Saturator.so").runpath == ()  # build untouched
    assert check_bundle(bundle.path, _profile("elk-1.x")) == []


def test_every_problem_is_listed_one_line_each(tmp_path: Path, compiler: Compiler, deps_lib: Path):
    source = _plugin_source("""
        #include <pthread.h>
        static void *run(void *arg) { return arg; }
        int start_worker(void) { pthread_t t; return pthread_create(&t, 0, run, 0); }
        int missing_fn(void);
        int use_missing(void) { return missing_fn(); }
    """, entry_points=False)
    elsewhere = tmp_path / "not-staged"
    compiler.library(elsewhere, "missing", 1, "int missing_fn(void) { return 2; }\n")
    built = _built(tmp_path / "build", compiler, deps_lib, source=source, arch_dir="arm64-linux",
                   libs=("engine", "missing"), lib_dirs=(elsewhere,))
    compiler.shared(built / "Contents" / "arm64-linux" / "libhelper.so", "int helper(void) { return 1; }\n",
                    cc=HOST_CC)
    with pytest.raises(NotDeployable) as caught:
        require_deployable(built, _profile("elk-0.11"))
    error = caught.value
    rules = sorted(p.rule for p in error.abi_problems)
    assert rules == ["arch", "exports", "exports", "exports", "folder", "glibc", "needed", "needed"]
    assert error.one_line() == (f"{built} cannot run on the elk-0.11 board: 8 problems (hint: fix each "
                                "problem listed, then run the bundle step again)")
    assert all("\n" not in line and line.startswith("Contents/") for line in error.problems)


def test_a_missing_bundle_is_one_problem(tmp_path: Path):
    assert _messages(tmp_path / "Nothing.vst3", "elk-1.x") == [
        "Nothing.vst3: no such bundle folder; run the bundle step first"]


def test_a_truncated_elf_file_is_a_problem_not_a_crash(tmp_path: Path, compiler: Compiler, deps_lib: Path):
    bundle = assemble_bundle(_built(tmp_path / "build", compiler, deps_lib), tmp_path / "out",
                             library_dirs=[deps_lib], model=None, profile=_profile("elk-1.x")).path
    (bundle / "Contents" / "aarch64-linux" / "libbroken.so").write_bytes(b"\x7fELF\x02\x01")
    assert _messages(bundle, "elk-1.x") == [
        "Contents/aarch64-linux/libbroken.so: starts like an ELF file but cannot be read: "
        "rebuild it or remove it from the bundle"]
