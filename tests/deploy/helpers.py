"""Helpers for the board, deploy and Sushi-service tests (all against the emulated board)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shlex
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from elkbuild.board.host_keys import known_hosts_name
from elkbuild.config import Board

HERE = Path(__file__).resolve().parent


def known_hosts_for(board: Any, directory: Path) -> Path:
    """A known_hosts file that trusts the emulated board's current host key."""
    line = board.host_key_line.strip()
    words = line.split()
    if words[0].startswith(("ssh-", "ecdsa-")):  # a bare "type base64" public key
        line = f"{known_hosts_name(board.host, board.port)} {words[0]} {words[1]}"
    path = directory / "known_hosts"
    path.write_text(line + "\n")
    return path


def board_profile(board: Any, directory: Path, *, known_hosts: Path | None = None,
                  keep_releases: int = 3) -> Board:
    return Board(name="emulated", host=board.host, port=int(board.port), user=board.user,
                 os_version="1.x", auth="key",
                 known_hosts=known_hosts or known_hosts_for(board, directory),
                 identity_file=Path(board.client_key), keep_releases=keep_releases)


def project_file(board: Any, directory: Path, keep_releases: int = 3) -> Path:
    """An elkbuild.yaml naming the emulated board `emu` (with its OS line), for tests
    that run the CLI."""
    known = known_hosts_for(board, directory)
    (directory / "elkbuild.yaml").write_text(
        "boards:\n"
        "  emu:\n"
        f"    host: {board.host}\n"
        f"    port: {int(board.port)}\n"
        f"    os_version: '{board.os_version}'\n"
        f"    known_hosts: {known}\n"
        f"    identity_file: {board.client_key}\n"
        f"    keep_releases: {keep_releases}\n")
    return directory


@pytest.fixture(params=["1.x", "0.11"])
def either_board(request: pytest.FixtureRequest) -> Any:
    """The 1.x board (bookworm, reset) and then the 0.11 board (bullseye, glibc 2.31):
    what runs on one must run on the other, both pinned to a Cortex-A72."""
    return request.getfixturevalue("fresh_emulated_board" if request.param == "1.x"
                                   else "emulated_board_0_11")


AARCH64 = 183
X86_64 = 62
_COMPILERS = {AARCH64: "aarch64-linux-gnu-gcc", X86_64: "gcc"}

# The three functions the VST3 SDK's loader (Sushi's) looks up, so a stand-in passes
# the ABI gate's exports rule; `threads` makes it call pthread_create, which a shared
# object binds to GLIBC_2.34 from glibc 2.34 on (bookworm's cross libc is 2.36):
# too new for Elk 0.11 (2.31), fine for Elk 1.x (2.35).
_PLUGIN_C = """
#include <pthread.h>
void *GetPluginFactory(void) { return 0; }
int ModuleEntry(void *handle) { return 1; }
int ModuleExit(void) { return 1; }
#ifdef THREADS
static void *run(void *arg) { return arg; }
int elk_start_thread(void) { pthread_t t; return pthread_create(&t, 0, run, 0); }
#endif
"""


@functools.lru_cache(maxsize=None)
def plugin_binary(machine: int = AARCH64, threads: bool = False) -> bytes:
    """A real shared object for `machine` that exports the VST3 entry points (built
    once per test session with the host's cross compiler)."""
    from elkbuild.executor import LocalExecutor

    with tempfile.TemporaryDirectory() as scratch:
        source, out = Path(scratch) / "plugin.c", Path(scratch) / "plugin.so"
        source.write_text(_PLUGIN_C)
        LocalExecutor().run([_COMPILERS[machine], "-shared", "-fPIC", "-O1", "-s",
                             *(["-DTHREADS", "-pthread"] if threads else []),
                             "-o", str(out), str(source)])
        return out.read_bytes()


def make_bundle(root: Path, name: str, size: int = 20_000, extra: dict[str, bytes] | None = None,
                marker: bytes = b"", machine: int = AARCH64, threads: bool = False) -> Path:
    """A VST3 bundle laid out the way Sushi loads it on aarch64 Linux: its binary is a
    real shared object for `machine` (passing the ABI gate when that is aarch64 and
    `threads` is off) with `size` bytes of its own after the ELF's end, which loaders
    ignore, so every bundle's binary differs."""
    bundle = root / f"{name}.vst3"
    binary_dir = bundle / "Contents" / "aarch64-linux"
    binary_dir.mkdir(parents=True, exist_ok=True)
    seed = hashlib.sha256(name.encode()).digest()
    body = (seed * (size // len(seed) + 1))[:size]
    binary = binary_dir / f"{name}.so"
    binary.write_bytes(plugin_binary(machine, threads) + marker + body)
    binary.chmod(0o755)
    resources = bundle / "Contents" / "Resources"
    resources.mkdir(exist_ok=True)
    (resources / "model.onnx").write_bytes(body[::-1] + name.encode())
    for rel, data in (extra or {}).items():
        target = bundle / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return bundle


def sushi_config(path: Path, *bundles: str) -> Path:
    """A Sushi 1.x config with one track that loads the given bundles."""
    plugins = [{"path": f"{name}.vst3", "name": f"p{i}", "type": "vst3x", "uid": name}
               for i, name in enumerate(bundles)]
    doc = {"host_config": {"samplerate": 48000},
           "tracks": [{"name": "main", "channels": 2, "inputs": [], "outputs": [],
                       "plugins": plugins}],
           "midi": {}}
    path.write_text(json.dumps(doc, indent=2))
    return path


def board_sh(board: Any, script: str, *args: str) -> str:
    """Run a shell snippet as root on the board; values passed as arguments."""
    done = board.run(["sh", "-c", script, "sh", *args])
    return done.stdout if hasattr(done, "stdout") else str(done)


BOARD_TREE = r'''find "$1" /home/mind/plugins /home/mind/config_files -exec stat -c '%n %F %s %N' {} + 2>/dev/null | sort
cat "$1/current/manifest.json" 2>/dev/null; true'''


def board_tree(board: Any, root: str = "/udata/elkbuild") -> str:
    """Every entry under the release root and the stable paths Sushi uses (type, size,
    link target) and the current manifest: equal before and after = nothing changed."""
    return board_sh(board, BOARD_TREE, root)


def current_release(board: Any, root: str = "/udata/elkbuild") -> str:
    return board_sh(board, 'readlink "$1/current" || true', root).strip()


VERIFY = r'''
root=$1
cur=$(readlink "$root/current") || { echo "NO-CURRENT"; exit 0; }
cd "$root/$cur" || { echo "DANGLING $cur"; exit 0; }
echo "RELEASE ${cur##*/}"
find . -type f ! -name manifest.json ! -name digest ! -name sushi-config ! -name sushi-plugins \
  -exec sha256sum {} + | sed 's/^\([0-9a-f]*\)  /FILE \1 /'
echo "MANIFEST-BEGIN"
cat manifest.json
'''


def verify_current_release(board: Any, root: str = "/udata/elkbuild") -> str | None:
    """Check that the current release's files are exactly its manifest.

    Returns the release name, or None when the board has no release yet; raises
    AssertionError on any mismatch.
    """
    out = board_sh(board, VERIFY, root)
    if out.startswith("NO-CURRENT"):
        return None
    assert not out.startswith("DANGLING"), out
    head, _, manifest_text = out.partition("MANIFEST-BEGIN\n")
    lines = head.splitlines()
    release = lines[0].split(" ", 1)[1]
    on_board = {}
    for line in lines[1:]:
        _, digest, rel = line.split(" ", 2)
        on_board[rel[2:]] = digest
    manifest = json.loads(manifest_text)
    assert manifest["release"] == release, (manifest["release"], release)
    expected = {rel: entry["sha256"] for rel, entry in manifest["files"].items()}
    assert on_board == expected, {"missing": sorted(set(expected) - set(on_board)),
                                  "extra": sorted(set(on_board) - set(expected)),
                                  "differ": sorted(k for k in expected
                                                   if k in on_board and on_board[k] != expected[k])}
    return release


def no_pwned_anywhere(board: Any) -> list[str]:
    """Every file named pwned on the board (there must be none)."""
    out = board_sh(board, "find / -xdev -name pwned 2>/dev/null; "
                          "find /udata /tmp /home -name pwned 2>/dev/null; true")
    return sorted(set(out.split()))


def quote(*words: str) -> str:
    return shlex.join(words)


def lock_live(board: Any, root: str = "/udata/elkbuild") -> bool:
    """Does a live process hold the board's deploy lock (lock.sh's own test)?"""
    from elkbuild.board.lock import LOCK_FUNCTIONS

    return board_sh(board, LOCK_FUNCTIONS + 'elk_lock_live "$1/lock" && echo held || true',
                    root).strip() == "held"


def lock_freed_within(board: Any, seconds: float, root: str = "/udata/elkbuild") -> bool:
    deadline = time.monotonic() + seconds
    while lock_live(board, root):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)
    return True


def staging_exists(board: Any, root: str = "/udata/elkbuild") -> bool:
    """Is a release being staged (a .partial folder): the upload is under way. Read
    through the host's view of the board's files: no process, quick enough to poll."""
    try:
        return any(entry.name.endswith(".partial")
                   for entry in os.scandir(board.path(f"{root}/releases")))
    except FileNotFoundError:
        return False


def cli_env(project: Path, tmp: Path) -> dict[str, str]:
    """The environment of a deploy CLI run against `project` and no user file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELKBUILD_")}
    env.update(ELKBUILD_PROJECT_DIR=str(project), ELKBUILD_USER_CONFIG=str(tmp / "none.yaml"))
    return env


def sushi_offline(board: Any, config: str, audio: Any, rate: int) -> tuple[Any, int]:
    """`audio` (channels × samples) through the board's Sushi in offline mode with the
    deployed config `config`: the output, and the latency its plugins reported (read
    from the run's result, never guessed from the output)."""
    from audio_helpers import read_wav, write_wav

    from elkbuild.vst3host.run import chain_latency, result_line

    write_wav(board.path("/udata/in.wav"), audio, rate)
    processed = board.run(["sushi", "-o", "-c", f"/home/mind/config_files/{config}",
                           "-i", "/udata/in.wav", "-O", "/udata/out.wav"], user="mind")
    assert processed.returncode == 0, processed.stderr
    log = board.run(["cat", "/tmp/sushi.log"]).stdout
    assert "Processing /udata/in.wav through" in log, log
    out, out_rate = read_wav(board.path("/udata/out.wav"))
    assert out_rate == rate and out.shape == audio.shape
    latency = chain_latency(result_line(processed.stdout))
    assert latency is not None, f"no reported latency in: {processed.stdout[-500:]}"
    return out, latency


def cache_env(cache: Path) -> dict[str, str]:
    """The environment that points the CLI at the tests' elkbuild cache."""
    return {"ELKBUILD_CACHE": str(cache)}


def cross_build(project: Path, plugins: Any, cache: Path, timeout: float = 2400) -> dict[str, dict]:
    """`invoke build --plugin A --plugin B ... --json` in `project` with the tests'
    elkbuild cache: each plugin's result by name (its status, bundle, board profiles)."""
    from cli_helpers import run_task

    args = [item for name in plugins for item in ("--plugin", name)]
    done = run_task("build", *args, "--json", project=project, env=cache_env(cache), timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line) for line in done.stdout.splitlines()]
    for result in results:
        print(f"{result['plugin']}: {result['status']} in {result['seconds']:.0f} s")
    return {result["plugin"]: result for result in results}

