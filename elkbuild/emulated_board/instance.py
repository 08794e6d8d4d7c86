"""One emulated Elk board: a running arm64 userland reachable over real SSH.

The board is the cached rootfs + stand-ins layers under this instance's writable
layer, chrooted inside private user/UTS/mount/PID namespaces (hostname elk-pi),
with the board's own arm64 sshd as PID 1 listening on 127.0.0.1:<port>. Every
arm64 program there runs on qemu's model of the Pi 4's CPU, through the board's
own binfmt_misc instance (see images.BOARD_CPU). Its state
lives in $ELKBUILD_CACHE/board/instances/<name>/:

    instance.json   port and OS profile chosen for this instance
    upper/ work/    the writable layer (survives restarts; `reset` cleans it)
    udata/          the board's /udata partition
    hostkey/        sshd's host key (persistent, so known_hosts stays valid)
    client/         a key pair authorised for mind
    board.pid       host PID of the board's PID 1 while it runs
    board.log       the board's console (sshd -e and start-up messages)
    cpu-pinning     how its programs get the Pi 4's CPU model (binfmt or env)
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from elkbuild.errors import BoardError, UsageError
from elkbuild.executor import Completed, Executor, require
from elkbuild.emulated_board import host, images

log = logging.getLogger("elkbuild.board")

HOST = "127.0.0.1"
USER = "mind"
PASSWORD = "elk"
DEFAULT_PORT = 2222
DEFAULT_NAME = "default"
PROFILES = ("0.11", "1.x")
BOARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RTSTAT = "/usr/lib/elk-board/rtstat"
# Real-time thread rows of the Sushi stand-in (assets/src/sushi.c) while it runs
# with -r: the process, its audio thread, and `-m N` workers (<name>_1 ...).
SUSHI_MAIN_THREAD = "sushi_b64"
SUSHI_AUDIO_THREAD = "sushi_rt_audio"
SUSHI_WORKER_THREAD = "sushi_rt_worker"
START_TIMEOUT = 60.0
USERNS = Path(__file__).resolve().parent / "userns.py"
CPU_PINNING = "cpu-pinning"  # written by board-init.sh: binfmt or env
# Board paths that `reset` empties, as a fresh Elk user partition and home have them.
RESET_DIRS = ("/udata", "/home/mind/plugins", "/home/mind/config_files")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((HOST, port)) == 0


def _ssh_banner(port: int, timeout: float = 5.0) -> bytes:
    with socket.create_connection((HOST, port), timeout=timeout) as conn:
        return conn.recv(64)


@dataclass
class EmulatedBoard:
    """An emulated Elk board. All commands go through `executor`."""

    executor: Executor
    cache_dir: Path
    name: str = DEFAULT_NAME
    port: int | None = None
    os_version: str | None = None
    sftp: bool | None = None
    """False: sshd offers no SFTP subsystem (like Dropbear images); kept per instance."""
    host: str = HOST
    user: str = USER
    password: str = PASSWORD
    _settings: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise UsageError(f"board name {self.name!r}: use letters, digits, '-' or '_'")
        saved = self._load_settings()
        if self.port is None:
            self.port = int(saved.get("port", DEFAULT_PORT))
        if self.os_version is None:
            self.os_version = saved.get("os_version", "1.x")
        if self.sftp is None:
            self.sftp = bool(saved.get("sftp", True))
        self._check_profile(self.os_version)
        self._boot_profile = self.os_version

    # ------------------------------------------------------------------ places
    @property
    def instance_dir(self) -> Path:
        return images.board_cache(self.cache_dir) / "instances" / self.name

    @property
    def client_key(self) -> Path:
        """A private key authorised for mind on this board."""
        return self.instance_dir / "client" / "id_ed25519"

    @property
    def host_key_file(self) -> Path:
        return self.instance_dir / "hostkey" / "ssh_host_ed25519_key"

    @property
    def log_file(self) -> Path:
        return self.instance_dir / "board.log"

    @property
    def host_key_line(self) -> str:
        """This board's entry for a known_hosts file."""
        key_type, key = self.host_key_file.with_suffix(".pub").read_text().split()[:2]
        where = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        return f"{where} {key_type} {key}"

    def record_host_key(self, known_hosts: Path) -> None:
        """Put this board's key into a known_hosts file, dropping older entries for it."""
        where = self.host_key_line.split()[0]
        kept = []
        if known_hosts.exists():
            kept = [line for line in known_hosts.read_text().splitlines()
                    if line.split()[:1] != [where]]
        known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = known_hosts.with_name(known_hosts.name + ".elkbuild-tmp")
        tmp.write_text("\n".join([*kept, self.host_key_line]) + "\n")
        tmp.replace(known_hosts)

    def ssh_argv(self, *remote: str, known_hosts: Path | None = None) -> list[str]:
        """`ssh` arguments that log in as mind with the client key."""
        hosts = known_hosts or self.instance_dir / "known_hosts"
        if known_hosts is None:
            hosts.write_text(self.host_key_line + "\n")
        return ["ssh", "-p", str(self.port), "-i", str(self.client_key),
                "-o", f"UserKnownHostsFile={hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                f"{self.user}@{self.host}", *remote]

    # ------------------------------------------------------------------ settings
    def _load_settings(self) -> dict:
        path = self.instance_dir / "instance.json"
        try:
            self._settings = json.loads(path.read_text())
        except (OSError, ValueError):
            self._settings = {}
        return self._settings

    def _save_settings(self) -> None:
        self.instance_dir.mkdir(parents=True, exist_ok=True)
        self._settings.update(port=self.port, os_version=self.os_version, sftp=self.sftp)
        path = self.instance_dir / "instance.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._settings, indent=2, sort_keys=True) + "\n")
        tmp.replace(path)

    @staticmethod
    def _check_profile(profile: str) -> None:
        if profile not in PROFILES:
            raise UsageError(f"OS profile {profile!r} is not known; allowed: "
                             + " or ".join(PROFILES))

    # ------------------------------------------------------------------ lifecycle
    def pid(self) -> int | None:
        """Host PID of the board's PID 1 (its sshd), if the board runs."""
        try:
            pid = int((self.instance_dir / "board.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if b"sshd" in cmdline else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def up(self, progress: images.Progress | None = None,
           mirror: str = images.DEFAULT_MIRROR) -> float:
        """Build what is missing (from Debian's archive at `mirror`), start the board
        with the userland of its OS view, wait for sshd. Returns seconds taken."""
        started = time.monotonic()
        if self.is_running():
            return 0.0
        ok, why = host.host_usable()
        if not ok:
            raise BoardError(f"cannot run the emulated board here: {why}")
        host.ensure_binfmt(self.executor)
        layers = images.ensure_layers(self.executor, self.cache_dir, self.os_version, progress,
                                      mirror)
        if _port_open(self.port):
            raise BoardError(f"port {self.port} on {self.host} is already in use",
                             "choose another with --port, or stop what listens there")
        self._prepare_instance()
        self._save_settings()
        self._boot_profile = self.os_version
        (self.instance_dir / "board.pid").unlink(missing_ok=True)
        launched = time.monotonic()
        (self.instance_dir / CPU_PINNING).unlink(missing_ok=True)
        rule = host.board_binfmt_rule(layers.assets / images.BINFMT_INTERPRETER)
        self.executor.run(["setsid", "--fork", sys.executable, str(USERNS), str(self.log_file),
                           "--", "/bin/sh", str(images.ASSETS / "board-init.sh"),
                           str(layers.rootfs), str(layers.assets), str(self.instance_dir),
                           str(self.port), self.os_version, "sftp" if self.sftp else "no-sftp",
                           rule])
        # The start-up allowance counts from the launch: a first run spends minutes
        # building the layers before that, which must not eat into it.
        self._wait_for_sshd(launched)
        if self.cpu_pinning() == "env":
            log.warning("the emulated board pins qemu to %s through QEMU_CPU only (Linux < 6.7 "
                        "gives it no binfmt_misc of its own): env -i, su - and sudo escape it",
                        images.BOARD_CPU)
        return time.monotonic() - started

    def userland(self) -> str | None:
        """The Debian release the running board's userland is (bullseye for a board
        started with 0.11, bookworm for 1.x), None when it does not run."""
        pid = self.pid()
        if pid is None:
            return None
        try:
            recipe = json.loads(Path(f"/proc/{pid}/root/etc/elk-board-recipe.json").read_text())
            return str(recipe["rootfs"]["suite"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def cpu_pinning(self) -> str | None:
        """How the board's programs get the Pi 4's CPU model: "binfmt" (every
        program, through the board's own binfmt_misc), "env" (QEMU_CPU, which a
        cleared environment loses), or None before the board first ran."""
        try:
            return (self.instance_dir / CPU_PINNING).read_text().strip() or None
        except OSError:
            return None

    def _prepare_instance(self) -> None:
        inst = self.instance_dir
        for sub in ("upper", "work", "udata", "root", "hostkey", "client"):
            (inst / sub).mkdir(parents=True, exist_ok=True)
        (inst / "udata").chmod(0o755)
        os.chown(inst / "udata", 1000, 1000)
        if not self.host_key_file.exists():
            self._make_host_key()
        if not self.client_key.exists():
            self.executor.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "",
                               "-C", f"elkbuild emulated board {self.name}",
                               "-f", str(self.client_key)])

    def _make_host_key(self) -> None:
        for path in (self.host_key_file, self.host_key_file.with_suffix(".pub")):
            path.unlink(missing_ok=True)
        self.executor.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "",
                           "-C", f"root@elk-pi ({self.name})", "-f", str(self.host_key_file)])

    def _wait_for_sshd(self, started: float) -> None:
        deadline = started + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._init_ended():
                break
            if self.is_running() and _port_open(self.port):
                try:
                    if _ssh_banner(self.port).startswith(b"SSH-"):
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        tail = self._log_tail()
        self.down()
        raise BoardError(f"the emulated board {self.name!r} did not come up on port "
                         f"{self.port}: {tail}", f"see {self.log_file}")

    def _init_ended(self) -> bool:
        for name in ("board.pid", "board.pid.tmp"):
            try:
                pid = int((self.instance_dir / name).read_text().strip())
            except (OSError, ValueError):
                continue
            return not Path(f"/proc/{pid}").exists()
        return False

    def _log_tail(self) -> str:
        try:
            lines = [l for l in self.log_file.read_text().splitlines() if l.strip()]
        except OSError:
            return "no board log"
        return lines[-1] if lines else "empty board log"

    def down(self, timeout: float = 10.0) -> bool:
        """Stop the board (every process in it ends with its PID 1). True if it ran."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() == pid:
            time.sleep(0.05)
        if self.pid() == pid:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        (self.instance_dir / "board.pid").unlink(missing_ok=True)
        return True

    def destroy(self) -> None:
        """Stop the board and delete this instance (the cached layers stay)."""
        self.down()
        if self.instance_dir.exists():
            shutil.rmtree(self.instance_dir)

    def status(self) -> dict:
        layers = images.cached_layers(self.cache_dir, self.os_version)
        pid = self.pid()
        return {
            "name": self.name,
            "running": pid is not None,
            "pid": pid,
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "os_version": self.os_version,
            "userland": self.userland(),
            "cpu": images.BOARD_CPU,
            "cpu_pinning": self.cpu_pinning(),
            "instance_dir": str(self.instance_dir),
            "rootfs_cached": layers.rootfs.is_dir(),
            "assets_cached": layers.assets.is_dir(),
            "client_key": str(self.client_key),
            "host_key": self.host_key_line if self.host_key_file.exists() else None,
        }

    def _require_running(self) -> int:
        pid = self.pid()
        if pid is None:
            raise BoardError(f"the emulated board {self.name!r} is not running",
                             "start it with: invoke board-up")
        return pid

    def processes(self, *, with_listener: bool = False) -> list[int]:
        """Host PIDs of the board's processes below its sshd listener (the SSH
        sessions and all they started), and the listener itself if asked: what a
        test freezes (SIGSTOP) to make the board stall with its link up."""
        root = self._require_running()
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat_line = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat_line.rsplit(")", 1)[1].split()[1])
        found = {root}
        changed = True
        while changed:
            changed = False
            for pid, parent in parents.items():
                if parent in found and pid not in found:
                    found.add(pid)
                    changed = True
        if not with_listener:
            found.discard(root)
        return sorted(found)

    def signal_processes(self, pids: Sequence[int], signum: int) -> None:
        """Send `signum` to each PID that still exists."""
        for pid in pids:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    # ------------------------------------------------------------------ inside the board
    def run(self, argv: Sequence[str], *, user: str = "root", check: bool = False,
            input: str | bytes | None = None, timeout: float | None = 120,
            env: dict[str, str] | None = None, cwd: str = "/") -> Completed:
        """Run argv inside the board directly (no SSH), as root unless told otherwise."""
        pid = self._require_running()
        board_env = {"PATH": BOARD_PATH, "LANG": "C.UTF-8",
                     "HOME": "/root" if user == "root" else f"/home/{user}"}
        if self.cpu_pinning() == "env":
            board_env["QEMU_CPU"] = images.BOARD_CPU
        board_env.update(env or {})
        inner = ["/usr/bin/env", "-i", *(f"{k}={v}" for k, v in board_env.items()), *argv]
        if user != "root":
            # /sbin, not /usr/sbin: bullseye (the 0.11 board) is not usr-merged
            inner = ["/sbin/runuser", "-u", user, "--", *inner]
        # --user: the board's binfmt_misc instance belongs to its user namespace;
        # a process outside it would run arm64 programs on qemu's default CPU.
        return self.executor.run(["nsenter", "--target", str(pid), "--user", "--mount", "--uts",
                                  "--pid",
                                  f"--root=/proc/{pid}/root", f"--wd=/proc/{pid}/root{cwd}",
                                  *inner], check=check, input=input, timeout=timeout)

    def path(self, board_path: str) -> Path:
        """The host path of a board path, while the board runs (reads and writes)."""
        if not board_path.startswith("/"):
            raise UsageError(f"board path {board_path!r} must be absolute")
        pid = self._require_running()
        return Path(f"/proc/{pid}/root") / board_path.lstrip("/")

    # ------------------------------------------------------------------ real-time view
    def set_profile(self, os_version: str) -> None:
        """Switch between the Elk Audio OS 0.11 (Xenomai 3) and 1.x (EVL) views of
        real-time statistics and Sushi. A running board keeps the userland it
        started with (its glibc and libstdc++); `up` after `down` picks the one of
        the new view."""
        self._check_profile(os_version)
        self.os_version = os_version
        self._save_settings()
        if self.is_running():
            self.run([RTSTAT, "profile", os_version], check=True)

    def raise_switches(self, thread_name: str, count: int = 1) -> None:
        """Add `count` mode switches (MSW on 0.11, ISW on 1.x) to a thread's rows."""
        if count < 0:
            raise UsageError(f"count {count}: must be 0 or more")
        self.run([RTSTAT, "raise", thread_name, str(count)], check=True)

    def add_thread(self, name: str, *, pid: int = 0, cpu: int = 0, msw: int = 0,
                   kernel: bool = False, cpu_percent_tenths: int = 0) -> None:
        """Add a real-time thread row (a plugin's worker, a kernel thread, ...)."""
        argv = [RTSTAT, "add", name, f"--pid={pid}", f"--cpu={cpu}", f"--msw={msw}",
                f"--cpu-percent={cpu_percent_tenths}"]
        if kernel:
            argv.append("--kernel")
        self.run(argv, check=True)

    def remove_thread(self, name: str) -> None:
        self.run([RTSTAT, "remove", name], check=True)

    def rt_report(self) -> str:
        """What a monitor sees: the stat file on 0.11, `evl ps -s` on 1.x."""
        if self.os_version == "0.11":
            return self.run(["cat", "/proc/xenomai/sched/stat"], check=True).stdout
        return self.run(["evl", "ps", "-s"], check=True).stdout

    # ------------------------------------------------------------------ debugging
    def gdb_argv(self, program: str, socket_path: str, commands: Sequence[str]) -> list[str]:
        """Host gdb-multiarch attached to a board program started by `elk-gdbstub`."""
        root = f"/proc/{self._require_running()}/root"
        argv = ["gdb-multiarch", "-q", "-batch", "-nx", "-ex", f"set sysroot {root}",
                "-ex", f"file {root}{program}", "-ex", f"target remote {root}{socket_path}"]
        for command in commands:
            argv += ["-ex", command]
        return argv

    def gdb_backtrace(self, argv: Sequence[str], *, signal_name: str = "SIGXCPU",
                      after_start: Callable[[], None] | None = None,
                      timeout: float = 120) -> str:
        """Run argv on the board under the debugger, stop at `signal_name`, return `bt`.

        The emulated board's take on Elk's `gdb sushi_b64` / `catch signal SIGXCPU` /
        `run -r --debug-mode-sw ...`: qemu-user cannot be ptraced, so the program
        runs under qemu's gdb stub (a Unix socket in the board's /tmp) and the
        host's gdb-multiarch connects to it. `after_start` runs once the program
        is under way (e.g. to raise a mode switch counter).
        """
        require("gdb-multiarch", "apt-get install gdb-multiarch")
        program = self.run(["/bin/sh", "-c", 'command -v "$1"', "sh", argv[0]]).stdout.strip()
        if not program:
            raise BoardError(f"{argv[0]}: not found on the emulated board")
        if self.path(program).read_bytes()[:2] == b"#!":
            raise UsageError(f"{program} is a script; debug the program it starts",
                             "for Sushi use sushi_b64, as Elk's guide does")
        socket_path = f"/tmp/elk-gdbstub-{os.getpid()}-{int(time.monotonic() * 1000)}.sock"
        self.run(["/bin/sh", "-c", 'exec setsid -f "$@" >/dev/null 2>&1 </dev/null', "sh",
                  "/usr/bin/elk-gdbstub", socket_path, program, *argv[1:]], check=True)
        host_socket = self.path(socket_path)
        deadline = time.monotonic() + 15
        while not host_socket.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not host_socket.exists():
            raise BoardError(f"qemu's gdb stub did not start {program} on the emulated board")
        commands = [f"catch signal {signal_name}", "continue", "bt", "kill"]
        result: dict[str, Completed | BaseException] = {}

        def debug() -> None:
            try:
                result["done"] = self.executor.run(self.gdb_argv(program, socket_path, commands),
                                                   check=False, timeout=timeout)
            except BaseException as error:  # handed to the caller below
                result["done"] = error

        worker = threading.Thread(target=debug, daemon=True)
        worker.start()
        try:
            if after_start is not None:
                after_start()
        finally:
            worker.join(timeout)
            self.run(["pkill", "-KILL", "-f", socket_path])
            host_socket.unlink(missing_ok=True)
        done = result.get("done")
        if isinstance(done, BaseException):
            raise done
        if done is None:
            raise BoardError(f"gdb did not finish within {timeout:.0f} s")
        return done.stdout + done.stderr

    # ------------------------------------------------------------------ keys and reset
    def regenerate_host_key(self) -> str:
        """Give the board a new host key (as a reflash would); returns its known_hosts line."""
        self._make_host_key()
        pid = self.pid()
        if pid is not None:
            # sshd re-executes itself on SIGHUP and loads the new key; connections
            # made after that see it.
            os.kill(pid, signal.SIGHUP)
            time.sleep(0.3)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    if _ssh_banner(self.port).startswith(b"SSH-"):
                        break
                except OSError:
                    time.sleep(0.1)
        return self.host_key_line

    def stop_sushi(self) -> None:
        self.run(["/usr/bin/sushi-service", "stop"])

    def reset(self) -> None:
        """Back to a fresh board between tests: no Sushi, empty user folders, fresh
        real-time counters, and the OS profile the board was started with."""
        self._require_running()
        if self.os_version != self._boot_profile:
            self.os_version = self._boot_profile
            self._save_settings()
        script = (
            "/usr/bin/sushi-service stop >/dev/null 2>&1; "
            "pkill -KILL -x sushi_b64 2>/dev/null; "
            # a deploy turns the plugin and config folders into links: folders again
            "for d in " + " ".join(shlex.quote(d) for d in RESET_DIRS) + "; do "
            "if [ -L \"$d\" ]; then rm -f \"$d\" && install -d -o mind -g mind \"$d\"; "
            "else find \"$d\" -mindepth 1 -delete; fi; done; "
            "rm -rf /tmp/* /tmp/.[!.]* 2>/dev/null; "
            f"{RTSTAT} boot {shlex.quote(self.os_version)}"
        )
        self.run(["/bin/sh", "-c", script], check=True)
