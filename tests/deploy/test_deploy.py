"""Deploys: payload and plan (pure), then real deploys to the emulated board.

The board tests drive elkbuild exactly as a user does (library API and the
`invoke deploy` CLI in a subprocess) and check the board's files directly.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from elkbuild.board.connection import connect
from elkbuild.deploy import deployer, payload as dep, plan, release
from elkbuild.errors import BoardError, UsageError
from elkbuild.sushi.check import InvalidJson
from elkbuild.sushi.service import settings_for

from cli_helpers import REPO, assert_one_line_error, run_task
from deploy.helpers import X86_64, board_profile, board_sh, current_release, make_bundle, \
    no_pwned_anywhere, project_file, sushi_config, verify_current_release

HEALTH = 1.0


@pytest.fixture
def elk(fresh_emulated_board):
    """The emulated Elk board (real arm64 sshd under qemu), reset before each test."""
    return fresh_emulated_board


# --------------------------------------------------------------------------- pure logic

def test_names_are_data_but_control_characters_are_refused():
    assert dep.check_name("a;touch pwned", "x") == "a;touch pwned"
    assert dep.check_name("$(reboot) `x` 'q'", "x") == "$(reboot) `x` 'q'"
    for bad in ("", ".", "..", "a/b", "new\nline", "tab\there", "bell\x07"):
        with pytest.raises(UsageError):
            dep.check_name(bad, "--plugin")


def test_bundle_checks_name_the_fix(tmp_path):
    old_juce = tmp_path / "Old.vst3" / "Contents" / "arm64-linux"
    old_juce.mkdir(parents=True)
    (old_juce / "Old.so").write_bytes(b"x")
    with pytest.raises(UsageError) as arm64:
        dep.collect_payload([tmp_path / "Old.vst3"])
    assert "aarch64-linux" in arm64.value.one_line() and "rename" in arm64.value.one_line()
    with pytest.raises(UsageError) as not_bundle:
        dep.collect_payload([tmp_path])
    assert "not a .vst3 bundle" in not_bundle.value.one_line()
    with pytest.raises(InvalidJson) as bad_json:  # the file's fault (exit 1), not the command line's
        dep.collect_payload([], ("rig.json", b"{not json", "rig.json"))
    assert "rig.json:1:2: invalid JSON" in bad_json.value.one_line()
    with pytest.raises(UsageError):
        dep.collect_payload([])


def test_payload_digest_follows_content_and_mode(tmp_path):
    bundle = make_bundle(tmp_path, "Gain")
    first = dep.collect_payload([bundle])
    assert dep.collect_payload([bundle]).digest() == first.digest()
    binary = bundle / "Contents" / "aarch64-linux" / "Gain.so"
    assert first.files["plugins/Gain.vst3/Contents/aarch64-linux/Gain.so"].mode == 0o755
    binary.chmod(0o644)
    assert dep.collect_payload([bundle]).digest() != first.digest()
    binary.chmod(0o755)
    (bundle / "Contents" / "Resources" / "model.onnx").write_bytes(b"retrained")
    assert dep.collect_payload([bundle]).digest() != first.digest()


def test_plan_links_what_the_board_has_and_sends_the_rest(tmp_path):
    a, b = make_bundle(tmp_path, "A"), make_bundle(tmp_path, "B")
    payload = dep.collect_payload([a, b])
    current = payload.manifest("r1")
    (b / "Contents" / "Resources" / "model.onnx").write_bytes(b"new model")
    renamed = tmp_path / "moved"
    renamed.mkdir()
    a_copy = make_bundle(renamed, "A2")
    changed = dep.collect_payload([a, b, a_copy])
    plan_ = plan.plan_release(changed, current, "r2")
    sent = sorted(f.rel for f in plan_.uploads)
    assert "plugins/B.vst3/Contents/Resources/model.onnx" in sent
    assert not any(rel.startswith("plugins/A.vst3/") for rel in sent)
    assert plan_.bytes_to_send == sum(f.size for f in plan_.uploads)
    assert ("plugins/A.vst3/Contents/aarch64-linux/A.so",
            "plugins/A.vst3/Contents/aarch64-linux/A.so") in plan_.links
    lines = release.link_lines(plan_.links, "/r/x.partial")
    assert all(line.startswith("cp -p -- ") for line in lines)
    assert any("/r/x.partial/plugins/A.vst3/Contents/aarch64-linux/" in line for line in lines)


def test_inherit_keeps_what_a_deploy_leaves_out(tmp_path):
    bundle = make_bundle(tmp_path, "Gain")
    config = sushi_config(tmp_path / "rig.json", "Gain")
    full = dep.collect_payload([bundle], ("rig.json", config.read_bytes(), str(config)))
    current = full.manifest("r1")
    plugins_only = dep.inherit(dep.collect_payload([bundle]), current)
    assert plugins_only.sushi_config == "rig.json"
    assert plugins_only.digest() == full.digest()
    config_only = dep.inherit(
        dep.collect_payload([], ("rig.json", config.read_bytes(), "rig.json")), current)
    assert config_only.plugins == ["Gain.vst3"] and config_only.digest() == full.digest()
    model = tmp_path / "extra.onnx"
    model.write_bytes(b"weights")
    models_only = dep.inherit(dep.collect_payload([], models=[model]), current)
    assert models_only.plugins == ["Gain.vst3"] and models_only.sushi_config == "rig.json"
    assert "plugins/models/extra.onnx" in models_only.files
    assert set(full.files) < set(models_only.files)
    assert full.expected_bundles() == ["Gain.vst3"]


# --------------------------------------------------------------------------- on the board

@pytest.fixture
def tree(tmp_path):
    """Two plugins (one with a hostile name) and a config that loads both."""
    src = tmp_path / "src"
    src.mkdir()
    gain = make_bundle(src, "Gain", size=60_000)
    hostile = make_bundle(src, "a;touch pwned", size=30_000)
    config = sushi_config(src / "rig.json", "Gain", "a;touch pwned")
    return {"gain": gain, "hostile": hostile, "config": config, "src": src}


def _payload(tree, config: Path | None = None):
    config = config or tree["config"]
    return dep.collect_payload([tree["gain"], tree["hostile"]],
                               (config.name, config.read_bytes(), str(config)))


def _deploy(board, payload, **kwargs):
    return deployer.deploy_to_board(board, payload, settings_for(board, health_seconds=HEALTH),
                               **kwargs)


def _stop_sushi(board):
    from elkbuild.sushi import service as sushi_service

    with connect(board) as conn:
        sushi_service.stop(conn, settings_for(board))


def test_incremental_deploy_sends_only_what_changed(elk, tmp_path, tree):
    board = board_profile(elk, tmp_path)
    try:
        first = _deploy(board, _payload(tree))
        assert first.ok, first.message
        assert first.files_sent == first.files_total == 5
        assert verify_current_release(elk) == first.release
        # Sushi runs from the stable paths, which point into the release
        assert board_sh(elk, "readlink /home/mind/plugins").strip() == \
            "/udata/elkbuild/current/plugins"
        assert "Gain.vst3" in board_sh(elk, "ls /home/mind/plugins/")

        again = _deploy(board, _payload(tree))
        assert again.ok and again.unchanged
        assert (again.files_sent, again.bytes_sent) == (0, 0)
        assert again.release == first.release

        model = tree["gain"] / "Contents" / "Resources" / "model.onnx"
        model.write_bytes(b"retrained " * 1000)
        third = _deploy(board, _payload(tree))
        assert third.ok, third.message
        assert third.files_sent == 1 and third.bytes_sent == model.stat().st_size
        assert third.files_linked == 4 and third.release != first.release
        assert verify_current_release(elk) == third.release
        # unchanged files are copied on the board, never shared: an edit to one
        # release's file must not change another's
        inodes = board_sh(elk, 'cd /udata/elkbuild/releases && '
                                          'stat -c %i "$1"/plugins/Gain.vst3/Contents/aarch64-linux/Gain.so '
                                          '"$2"/plugins/Gain.vst3/Contents/aarch64-linux/Gain.so',
                          first.release, third.release).split()
        assert inodes[0] != inodes[1]
        assert no_pwned_anywhere(elk) == []
    finally:
        _stop_sushi(board)


def test_failed_health_check_rolls_back_with_the_reason(elk, tmp_path, tree):
    board = board_profile(elk, tmp_path)
    try:
        good = _deploy(board, _payload(tree))
        assert good.ok, good.message
        # an x86-64 build deployed by mistake, past the ABI gate: Sushi refuses to load it
        make_bundle(tree["src"], "Gain", size=60_000, machine=X86_64)
        bad = _deploy(board, _payload(tree), abi_check=False)
        assert not bad.ok and bad.rolled_back
        assert "health check" in bad.message and good.release in bad.message
        assert "Gain" in bad.message
        assert current_release(elk).endswith(good.release)
        assert verify_current_release(elk) == good.release
        kept = board_sh(elk, "ls /udata/elkbuild/releases").split()
        assert kept == [good.release]  # the failed release is gone
        running = board_sh(elk, 'p=$(cat /tmp/elkbuild-sushi.pid) && '
                                           '[ -d /proc/$p ] && echo alive || echo dead')
        assert running.strip() == "alive"  # the previous release runs again
    finally:
        _stop_sushi(board)


def test_rollback_and_pruning_keep_the_last_releases(elk, tmp_path, tree):
    project = project_file(elk, tmp_path, keep_releases=2)
    releases = []
    model = tree["gain"] / "Contents" / "Resources" / "model.onnx"
    try:
        for round_ in range(3):
            model.write_bytes(f"model {round_}".encode() * 100)
            done = run_task("deploy", "--board", "emu", "--plugin", str(tree["gain"]),
                            "--plugin", str(tree["hostile"]), "--config", str(tree["config"]),
                            "--health-seconds", str(HEALTH), "--json", project=project)
            assert done.returncode == 0, done.stderr
            result = json.loads(done.stdout.splitlines()[-1])
            assert result["ok"] and result["boards"][0]["files_sent"] == (5 if round_ == 0 else 1)
            assert result["bytes_sent"] == result["boards"][0]["bytes_sent"] > 0
            releases.append(result["boards"][0]["release"])
            time.sleep(1.05)  # release names carry the second
        kept = board_sh(elk, "ls /udata/elkbuild/releases").split()
        assert kept == sorted(releases[-2:])
        back = run_task("rollback", "--board", "emu", "--health-seconds", str(HEALTH), "--json",
                        project=project)
        assert back.returncode == 0, back.stderr
        assert json.loads(back.stdout)["boards"][0]["release"] == releases[1]
        assert verify_current_release(elk) == releases[1]
        status = run_task("status", "--board", "emu", "--json", project=project)
        info = json.loads(status.stdout)
        assert info["running"] and info["release"] == releases[1]
        assert info["config"] == "/home/mind/config_files/rig.json"
        assert "-r" in info["cmdline"].split() or " -r " in f" {info['cmdline']} "
        none_left = run_task("rollback", "--board", "emu", project=project)
        assert_one_line_error(none_left, "no release older than")
    finally:
        run_task("stop", "--board", "emu", project=project)


def test_deploy_refuses_while_another_holds_the_lock(elk, tmp_path, tree):
    from elkbuild.board import lock as board_lock
    from elkbuild.board.remote_scripts import run_script, shell_assign

    board = board_profile(elk, tmp_path)
    holder = connect(board)
    try:
        run_script(holder.executor, board_lock.LOCK_FUNCTIONS + shell_assign(
            R=board.release_root) + 'mkdir -p "$R"; elk_lock "$R/lock" "alice@studio/pid42" 2026-01-01T00:00:00Z 0\n')
        with pytest.raises(BoardError) as busy:
            _deploy(board, _payload(tree), lock_wait=1)
        assert "locked by another deploy: alice@studio/pid42" in busy.value.one_line()
    finally:
        holder.close()
    # the holder's session is gone: its lock is stale and the next deploy proceeds
    done = _deploy(board, _payload(tree))
    assert done.ok, done.message
    _stop_sushi(board)


def test_cli_errors_are_one_line(elk, tmp_path, tree):
    project = project_file(elk, tmp_path)
    missing = run_task("deploy", "--board", "emu", "--plugin", str(tmp_path / "nope.vst3"),
                       project=project)
    assert_one_line_error(missing, "--plugin", "nope.vst3", code=2)
    (tmp_path / "known_hosts").write_text("")  # the board's key is not known any more
    unknown = run_task("deploy", "--board", "emu", "--plugin", str(tree["gain"]),
                       project=project)
    assert_one_line_error(unknown, "host key", "unknown", "--trust-host-key")
    assert board_sh(elk, "ls /udata/elkbuild 2>/dev/null || true").strip() == ""


def test_parallel_deploy_to_several_boards(elk, tmp_path, tree):
    """Two board profiles (two addresses, two release roots) deployed at once."""
    from elkbuild.board.host_keys import known_hosts_name

    key_type, key = elk.host_key_line.split()[-2:]
    known = tmp_path / "known_hosts"
    known.write_text("".join(f"{known_hosts_name(h, int(elk.port))} {key_type} {key}\n"
                             for h in ("127.0.0.1", "localhost")))
    boards = "".join(
        f"  {name}:\n    host: {host}\n    port: {int(elk.port)}\n"
        f"    known_hosts: {known}\n    identity_file: {elk.client_key}\n"
        f"    release_root: /udata/{name}\n    plugin_dir: /udata/{name}-plugins\n"
        f"    config_dir: /udata/{name}-configs\n"
        for name, host in (("left", "127.0.0.1"), ("right", "localhost")))
    (tmp_path / "elkbuild.yaml").write_text("boards:\n" + boards)
    done = run_task("deploy", "--all", "--plugin", str(tree["gain"]), "--json",
                    project=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert sorted(b["host"] for b in result["boards"]) == ["left", "right"]
    assert all(b["ok"] and b["files_sent"] == 2 for b in result["boards"])
    for name in ("left", "right"):
        assert verify_current_release(elk, f"/udata/{name}")
    table = run_task("deploy", "--all", "--plugin", str(tree["gain"]), project=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "left" in table.stdout and "right" in table.stdout and "unchanged" in table.stdout


# --------------------------------------------------------------------------- interruptions

class CuttableProxy:
    """A TCP relay to the board whose connections the test can cut at any moment."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self.sockets.clear()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.mark.slow
def test_deploy_cut_at_random_points_leaves_a_complete_release(elk, tmp_path, tree):
    """SIGKILL the deploy CLI, or cut its SSH connection, at >= 20 random moments.

    After each cut the current release must match its manifest, and the next
    deploy must succeed.
    """
    from elkbuild.board.host_keys import known_hosts_name

    proxy = CuttableProxy(int(elk.port))
    key_type, key = elk.host_key_line.split()[-2:]
    known = tmp_path / "known_hosts"
    known.write_text(f"{known_hosts_name('127.0.0.1', int(elk.port))} {key_type} {key}\n"
                     f"{known_hosts_name('127.0.0.1', proxy.port)} {key_type} {key}\n")
    (tmp_path / "elkbuild.yaml").write_text(
        "boards:\n"
        + "".join(f"  {name}:\n    host: 127.0.0.1\n    port: {port}\n"
                  f"    known_hosts: {known}\n    identity_file: {elk.client_key}\n"
                  f"    keep_releases: 3\n"
                  for name, port in (("direct", int(elk.port)),
                                     ("cut", proxy.port))))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELKBUILD_")}
    env.update(ELKBUILD_PROJECT_DIR=str(tmp_path),
               ELKBUILD_USER_CONFIG=str(tmp_path / "none.yaml"))
    model = tree["gain"] / "Contents" / "Resources" / "model.onnx"
    rng = random.Random(int(os.environ.get("ELKBUILD_TEST_SEED", "20261121")))

    def deploy_argv(board: str) -> list[str]:
        return [sys.executable, "-m", "invoke", "--search-root", str(REPO), "deploy",
                "--board", board, "--plugin", str(tree["gain"]), "--plugin",
                str(tree["hostile"]), "--config", str(tree["config"]),
                "--health-seconds", "0.5", "--json"]

    def change_payload(i: int) -> None:
        # a bigger file each time, so the transfer phase is wide enough to hit
        model.write_bytes(rng.randbytes(200_000 + i))

    try:
        start = time.monotonic()
        change_payload(-1)
        first = subprocess.run(deploy_argv("direct"), env=env, capture_output=True, text=True,
                               timeout=180)
        assert first.returncode == 0, first.stderr
        full_time = time.monotonic() - start
        outcomes = {"killed": 0, "cut": 0, "finished": 0}
        attempt = 0
        while outcomes["killed"] + outcomes["cut"] < 20 and attempt < 40:
            attempt += 1
            change_payload(attempt)
            how = "cut" if attempt % 3 == 0 else "killed"
            proc = subprocess.Popen(deploy_argv("cut" if how == "cut" else "direct"), env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(rng.uniform(0.05, full_time))
            if proc.poll() is None:
                if how == "cut":
                    proxy.cut()
                else:
                    proc.send_signal(signal.SIGKILL)
                outcomes[how] += 1
            else:
                outcomes["finished"] += 1
            proc.communicate(timeout=120)
            # wherever it stopped, the board is on one complete release
            assert verify_current_release(elk) is not None
        assert outcomes["killed"] >= 10 and outcomes["cut"] >= 5, outcomes
        assert no_pwned_anywhere(elk) == []
        change_payload(999)
        after = subprocess.run(deploy_argv("direct"), env=env, capture_output=True, text=True,
                               timeout=180)
        assert after.returncode == 0, after.stderr
        result = json.loads(after.stdout.splitlines()[-1])
        assert result["ok"]
        assert verify_current_release(elk) == result["boards"][0]["release"]
        leftovers = board_sh(elk, "ls -a /udata/elkbuild/releases").split()
        assert not [name for name in leftovers if name.endswith(".partial")]
        assert len([n for n in leftovers if n not in (".", "..")]) <= 3
    finally:
        proxy.close()
        _stop_sushi(board_profile(elk, tmp_path))


def test_deploy_renders_a_rig_for_the_board(elk, tmp_path):
    """--rig renders the repo's rig with the Sushi stage and Sushi loads the bundle."""
    from deploy.helpers import known_hosts_for

    bundle = make_bundle(tmp_path, "NeuralSaturator")
    known = known_hosts_for(elk, tmp_path)
    env = {"ELKBUILD_BOARDS__EMU__HOST": elk.host, "ELKBUILD_BOARDS__EMU__PORT": str(elk.port),
           "ELKBUILD_BOARDS__EMU__KNOWN_HOSTS": str(known),
           "ELKBUILD_BOARDS__EMU__IDENTITY_FILE": str(elk.client_key)}
    try:
        done = run_task("deploy", "--board", "emu", "--rig", "neural-mono", "--plugin",
                        str(bundle), "--health-seconds", str(HEALTH), "--json", env=env)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout.splitlines()[-1])
        assert result["ok"], result
        config = board_sh(elk, "cat /home/mind/config_files/neural-mono.json")
        assert "NeuralSaturator" in json.dumps(json.loads(config))
        assert board_sh(elk, "cat /udata/elkbuild/current/sushi-plugins").split() == \
            ["NeuralSaturator.vst3"]
        assert verify_current_release(elk) == result["boards"][0]["release"]
    finally:
        run_task("stop", "--board", "emu", env=env)
