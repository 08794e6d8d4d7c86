"""Find the call that makes Sushi leave the real-time domain (a mode switch).

With `--debug-mode-sw`, Sushi asks the real-time kernel to send SIGXCPU to an
audio thread the moment it switches to Linux. Run under gdb with a catchpoint on
that signal, the first switch stops the program right inside the offending call,
and the backtrace names it. This module builds the gdb command (pure), parses
gdb's batch output (pure), and runs it two ways:
- on the board: `gdb` there, through the board's executor (Elk's published recipe);
- from here: a gdb server on the board (gdbserver, or qemu-user's gdb stub on
  an emulated board) driven by this machine's gdb-multiarch through the SSH
  connection, for boards without a usable gdb.
"""

from __future__ import annotations

import re
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from elkbuild.board.forwarding import PortForward
from elkbuild.errors import BoardError, ToolMissing, UsageError
from elkbuild.executor import Executor
from elkbuild.monitor.sources import detect_profile

# /usr/bin/sushi on the board is a shell wrapper that picks sushi_b<N> by buffer
# size; gdb needs the real ELF, so the binary is named directly.
DEFAULT_SUSHI = "sushi_b64"
DEFAULT_TIMEOUT = 60.0
XENOMAI_LIBS = "/usr/xenomai/lib"  # 0.11's sushi.service adds it to LD_LIBRARY_PATH


def gdb_commands() -> list[str]:
    """What gdb does in batch mode: stop at the first SIGXCPU, print the stack."""
    return ["catch signal SIGXCPU", "run", "bt"]


def sushi_args(config: str, extra: tuple[str, ...] = ()) -> list[str]:
    if not config:
        raise UsageError("debug needs --config: the Sushi JSON file on the board",
                         "e.g. --config /home/mind/config_files/rig.json")
    return ["-r", "--debug-mode-sw", "-c", config, *extra]


def gdb_argv(program: str, arguments: list[str], *, gdb: str = "gdb",
             timeout: float | None = None) -> list[str]:
    """`gdb -batch -ex 'catch signal SIGXCPU' -ex run -ex bt --args PROGRAM ARGS...`.

    With `timeout`, the whole session is wrapped in `timeout SECONDS` (coreutils
    and busybox agree on that form): a Sushi that never switches would otherwise
    keep gdb waiting for ever.
    """
    argv = [gdb, "-batch", "-nx"]
    for command in gdb_commands():
        argv += ["-ex", command]
    argv += ["--args", program, *arguments]
    if timeout is not None:
        argv = ["timeout", f"{timeout:g}", *argv]
    return argv


# --------------------------------------------------------------------------- parsing

_SYSTEM_FUNCTIONS = frozenset({"raise", "abort", "malloc", "calloc", "realloc", "free",
                               "start_thread", "clone", "clone3", "syscall"})
# glibc's debug info names its sources relative to its build tree.
_SYSTEM_SOURCES = ("./nptl/", "../sysdeps/", "./malloc/", "../nptl/", "/libcobalt/",
                   "/libevl/", "../malloc/")
_SYSTEM_LIBRARY = re.compile(r"/(libc|libpthread|libcobalt|libevl|libmodechk|libstdc\+\+|"
                             r"libgcc_s|libm|ld-linux[^/]*)[.-][^/]*$")


@dataclass(frozen=True)
class Frame:
    number: int
    function: str
    address: str | None = None
    location: str | None = None   # "file.cpp:42" (debug info) or the library it is from
    has_source: bool = False

    def is_system(self) -> bool:
        """glibc, the thread start-up, or Cobalt/EVL: never the plugin's fault."""
        path = self.location or ""
        if not self.has_source and path:
            return bool(_SYSTEM_LIBRARY.search(path))
        return (self.function.startswith("_") or self.function in _SYSTEM_FUNCTIONS
                or any(part in path for part in _SYSTEM_SOURCES))

    def describe(self) -> str:
        text = f"#{self.number:<2} {self.function}"
        if self.location:
            text += f" {'at' if self.has_source else 'from'} {self.location}"
        return text


@dataclass(frozen=True)
class DebugResult:
    caught: bool
    frames: tuple[Frame, ...] = ()
    thread: str | None = None
    stop_line: str | None = None
    ended: str | None = None        # how the program ended when nothing was caught
    output: str = field(default="", repr=False)

    @property
    def culprit(self) -> Frame | None:
        """The innermost frame in the program's own code: frames of the C library
        and the real-time libraries (where the switch itself happens) are skipped."""
        for frame in self.frames:
            if not frame.is_system():
                return frame
        return self.frames[0] if self.frames else None

    def to_json(self) -> dict:
        culprit = self.culprit
        return {"caught": self.caught, "thread": self.thread, "ended": self.ended,
                "frames": [{"number": f.number, "function": f.function,
                            "address": f.address, "location": f.location}
                           for f in self.frames],
                "culprit": culprit.describe() if culprit else None}


_CATCH = re.compile(r"(?:Thread \S+(?: \"(?P<thread>[^\"]*)\")? hit |^)Catchpoint \d+ "
                    r"\(signal SIGXCPU\), ")
_FRAME = re.compile(r"^#(?P<number>\d+)\s+(?:(?P<address>0x[0-9a-fA-F]+) in )?(?P<rest>.+)$")
_EXITED = re.compile(r"^\[Inferior \d+ \(process \d+\) (?P<how>exited [^\]]*)\]")
_KILLED = re.compile(r"^Program terminated with signal (?P<signal>\S+)")


def _frame(match: re.Match[str]) -> Frame:
    rest = match.group("rest").strip()
    location = None
    has_source = False
    for marker, source in ((" at ", True), (" from ", False)):
        head, sep, tail = rest.rpartition(marker)
        if sep and tail and " " not in tail.strip():
            rest, location, has_source = head, tail.strip(), source
            break
    # "func (a=1, b=...)": the function is what precedes the argument list
    function = rest.split(" (", 1)[0].strip() or rest
    return Frame(int(match.group("number")), function, match.group("address"), location,
                 has_source)


def parse_gdb_output(text: str) -> DebugResult:
    """Read gdb's batch output: the catchpoint stop and the backtrace after it."""
    lines = text.splitlines()
    stop_at = None
    thread = None
    for index, line in enumerate(lines):
        match = _CATCH.search(line)
        if match:
            stop_at, thread = index, match.group("thread")
            break
    if stop_at is None:
        ended = None
        for line in lines:
            exited = _EXITED.match(line.strip())
            killed = _KILLED.match(line.strip())
            if exited:
                ended = exited.group("how")
            elif killed:
                ended = f"terminated by {killed.group('signal')}"
        return DebugResult(False, ended=ended, output=text)
    frames: list[Frame] = []
    for line in lines[stop_at + 1:]:
        match = _FRAME.match(line.strip())
        if match:
            number = int(match.group("number"))
            if frames and number <= frames[-1].number:
                break  # a second backtrace (another stop) is not ours
            frames.append(_frame(match))
    return DebugResult(True, tuple(frames), thread, lines[stop_at].strip(), output=text)


# --------------------------------------------------------------------------- running

def run_debug(executor: Executor, program: str, arguments: list[str], *,
              gdb: str = "gdb", timeout: float = DEFAULT_TIMEOUT,
              env: dict[str, str] | None = None) -> DebugResult:
    """Run the program under gdb through `executor` and read the first switch."""
    argv = gdb_argv(program, arguments, gdb=gdb, timeout=timeout)
    done = executor.run(argv, check=False, env=env, timeout=timeout + 30)
    output = done.stdout + ("\n" + done.stderr if done.stderr else "")
    result = parse_gdb_output(output)
    if result.caught or result.ended is not None:
        return result
    if done.returncode == 124:
        return DebugResult(False, ended=f"no mode switch within {timeout:g} s", output=output)
    if done.returncode == 127:
        raise ToolMissing(gdb, f"install gdb on the board, or debug from this machine with "
                               f"--gdbserver (gdbserver on the board, gdb-multiarch here); "
                               f"the board said: {_tail(output)}")
    raise BoardError(f"gdb ended without running {program} (exit {done.returncode}): "
                     f"{_tail(output)}", f"check that {program} exists on the board")


def debug_on_board(executor: Executor, program: str, arguments: list[str], *,
                   timeout: float = DEFAULT_TIMEOUT, gdb: str = "gdb") -> DebugResult:
    """Like run_debug, with the environment Sushi's service would give it."""
    from elkbuild.monitor.session import detect_profile

    env = {"LD_LIBRARY_PATH": XENOMAI_LIBS} if detect_profile(executor) == "0.11" else None
    return run_debug(executor, program, arguments, gdb=gdb, timeout=timeout, env=env)


_GDB_PROBLEM = re.compile(r"No such file or directory|not in executable format|"
                          r"Permission denied|cannot execute|During startup program exited")


def _tail(output: str) -> str:
    """The line that says what went wrong: gdb's own complaint if there is one."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    for line in lines:
        if _GDB_PROBLEM.search(line):
            return line[:160]
    return lines[-1][:160] if lines else "no output"


# --------------------------------------------------------------------------- remote gdb

# When the board has no gdb of its own (or one that cannot ptrace), the program
# runs under a gdb server on the board and the host's gdb-multiarch drives it
# through the SSH connection: no port of the board is opened to the network.
REMOTE_COMMANDS = ["catch signal SIGXCPU", "continue", "bt", "kill"]
SERVER_TIMEOUT = 20.0


def server_argv(server: str, port: int, program: str, arguments: list[str]) -> list[str]:
    """The board-side command: `gdbserver 127.0.0.1:PORT PROGRAM ARGS...`, or a
    qemu-user gdb stub wrapper (which takes a bare port, like `qemu -g PORT`)."""
    address = f"127.0.0.1:{port}" if PurePosixPath(server).name == "gdbserver" else str(port)
    return [server, address, program, *arguments]


def remote_gdb_argv(gdb: str, local_program: Path, port: int,
                    sysroot: Path | None = None) -> list[str]:
    """Host gdb attached to the forwarded server, stopping at the first SIGXCPU."""
    argv = [gdb, "-batch", "-nx"]
    if sysroot is not None:
        argv += ["-ex", f"set sysroot {sysroot}"]
    argv += ["-ex", f"file {local_program}", "-ex", f"target remote 127.0.0.1:{port}"]
    for command in REMOTE_COMMANDS:
        argv += ["-ex", command]
    return argv


# A gdb stub serves exactly one debugger, so readiness is read from the board's
# socket table (LISTEN is state 0A), never probed with a connection.
_LISTEN_SCRIPT = (
    'i=0; while [ "$i" -lt "$2" ]; do '
    'grep -qi -- ":$1 00000000:0000 0A" /proc/net/tcp /proc/net/tcp6 2>/dev/null && exit 0; '
    'sleep 0.1; i=$((i + 1)); done; exit 1'
)


def _wait_for_server(executor: Executor, port: int, server_ended: threading.Event,
                     server_lines: list[str]) -> None:
    deadline = time.monotonic() + SERVER_TIMEOUT
    while time.monotonic() < deadline:
        done = executor.run(["sh", "-c", _LISTEN_SCRIPT, "sh", f"{port:04X}", "10"],
                            check=False, timeout=30)
        if done.ok:
            return
        if server_ended.is_set():
            said = server_lines[-1] if server_lines else "no output"
            raise BoardError(f"the gdb server on the board ended at once: {said}",
                             "install gdbserver on the board, or name another with --gdbserver")
    raise BoardError(f"the gdb server on the board did not listen on port {port} within "
                     f"{SERVER_TIMEOUT:.0f} s", "check --gdbserver on the board")


_LDD_PATH = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-fA-F]+\)")


def library_paths(ldd_output: str) -> list[str]:
    """The absolute paths `ldd` resolved (the dynamic loader included)."""
    paths = []
    for line in ldd_output.splitlines():
        match = _LDD_PATH.search(line)
        if match and match.group(1) not in paths:
            paths.append(match.group(1))
    return paths


def fetch_sysroot(conn, remote_program: str, sysroot: Path) -> Path:
    """Copy the program and the libraries it loads into a local sysroot, so gdb
    can place a position-independent program and name frames in its libraries
    (a gdb server that cannot send files, like qemu's stub, needs this)."""
    local_program = sysroot / remote_program.lstrip("/")
    wanted = [remote_program]
    done = conn.executor.run(["ldd", remote_program], check=False)
    if done.ok:
        wanted += library_paths(done.stdout)
    for remote in wanted:
        local = sysroot / remote.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        conn.executor.fetch_file(remote, local)
    return local_program


def debug_via_server(conn, program: str, arguments: list[str], *, local: Executor,
                     server: str = "gdbserver", gdb: str = "gdb-multiarch",
                     timeout: float = DEFAULT_TIMEOUT, port: int | None = None) -> DebugResult:
    """Run the program under a gdb server on the board and debug it from here
    (`local` runs this machine's gdb).

    The program's ELF is copied from the board (gdb reads its symbols locally);
    the server's port is reached through the SSH connection, never the network.
    """
    found = conn.executor.run(["sh", "-c", 'command -v "$1"', "sh", program], check=False)
    remote_program = found.stdout.strip()
    if not found.ok or not remote_program.startswith("/"):
        raise BoardError(f"{program}: not found on the board",
                         "give the Sushi binary with --sushi (e.g. sushi_b64)")
    port = port or _pick_port()
    with tempfile.TemporaryDirectory(prefix="elkbuild-debug-") as tmp:
        sysroot = Path(tmp)
        local_program = fetch_sysroot(conn, remote_program, sysroot)
        if local_program.read_bytes()[:4] != b"\x7fELF":
            raise UsageError(f"{remote_program} is not a program (a script?); debug the "
                             f"binary it starts", "for Sushi that is sushi_b64")
        argv = server_argv(server, port, remote_program, arguments)
        if detect_profile(conn.executor) == "0.11":
            argv = ["env", f"LD_LIBRARY_PATH={XENOMAI_LIBS}", *argv]
        stream = conn.executor.stream(argv)
        server_lines: list[str] = []
        ended = threading.Event()

        def drain() -> None:
            for line in stream:
                server_lines.append(line)
            ended.set()

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        forward = None
        try:
            _wait_for_server(conn.executor, port, ended, server_lines)
            forward = PortForward(conn.transport, port)
            done = local.run(remote_gdb_argv(gdb, local_program, forward.port, sysroot),
                             check=False, timeout=timeout)
        finally:
            if forward is not None:
                forward.close()
            stream.close()
            reader.join(timeout=5)
    output = done.stdout + ("\n" + done.stderr if done.stderr else "")
    # Frames in libraries name the board's paths, not the temporary copies.
    output = output.replace(str(sysroot), "")
    result = parse_gdb_output(output)
    if not result.caught and result.ended is None:
        if done.returncode < 0 or done.returncode == 124:
            return DebugResult(False, ended=f"no mode switch within {timeout:g} s", output=output)
        raise BoardError(f"{gdb} could not debug {remote_program}: {_tail(output)}",
                         f"install {gdb} on this machine (apt-get install gdb-multiarch)")
    return result


def _pick_port() -> int:
    """A port that is free here; on the board it is only used on its loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --------------------------------------------------------------------------- output

def render(result: DebugResult) -> str:
    """What a user reads: where the first switch happened, then the whole stack."""
    if not result.caught:
        return f"no mode switch caught: the program {result.ended or 'ended'}"
    who = f" in thread {result.thread!r}" if result.thread else ""
    lines = [f"first mode switch{who} (SIGXCPU from --debug-mode-sw):"]
    culprit = result.culprit
    for frame in result.frames:
        mark = "->" if frame is culprit else "  "
        lines.append(f"{mark} {frame.describe()}")
    if culprit is not None:
        lines.append(f"the switching call is made from {culprit.function}"
                     + (f" at {culprit.location}" if culprit.location else "")
                     + ": move allocation, locks, I/O and system calls out of the audio "
                       "callback")
    return "\n".join(lines)


def conclude(result: DebugResult) -> None:
    """A program that died (other than by our catch) is an error; no switch is not."""
    ended = result.ended or ""
    if not result.caught and not (ended == "exited normally" or ended.startswith("no mode")):
        raise BoardError(f"the program {ended} before any mode switch: {_tail(result.output)}",
                         "run it without gdb to see why it fails (config path, plugins)")
