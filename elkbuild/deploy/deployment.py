"""Deploy plugins and a Sushi config to Elk boards: incremental, atomic, reversible.

Layout on the board (release_root defaults to /udata/elkbuild; /udata is the user
partition, which survives system updates that replace the A/B root filesystems):

    <root>/releases/<UTC time>-<digest>/     one complete release:
        plugins/<Name>.vst3/...              bundles (+ .so files and models inside)
        plugins/models/...                   extra model files
        config_files/<rig>.json              Sushi configs
        manifest.json                        content hashes of every file above
        sushi-config, sushi-plugins          the config to start, plugins to expect
    <root>/releases/<id>.partial/            a release being staged (never used)
    <root>/current -> releases/<id>          THE switch: replaced with one rename(2)
    <root>/lock/                             one deploy at a time (see board.py)
    /home/mind/plugins      -> <root>/current/plugins        created once
    /home/mind/config_files -> <root>/current/config_files   created once

Why symlinks created once: Sushi, its service unit and users' configs keep using the
stable paths /home/mind/plugins and /home/mind/config_files (1.x passes
--base-plugin-path=/home/mind/plugins; 0.11 configs name absolute plugin paths).
Those two links never change after the first deploy; every deploy only replaces
`current`, a single atomic rename, so Sushi sees either the whole old release or the
whole new one. A deploy cut at any point leaves `current` on the previous complete
release: staging happens in a .partial directory that is only renamed into place
once every file is there and synced, and the next deploy removes leftovers.

Unchanged files are not sent: the board's manifest lists each file's SHA-256, and
a file already present (same content and mode) is hard-linked from the current
release. Releases never modify files in place, so sharing inodes is safe.

Remote commands per deploy (each costs a fork/exec on the board, slow under
emulation and on a busy Pi): one to lock and read the manifest, one to link,
switch, restart Sushi and check its health; files go over one SFTP session.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shlex
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Callable, Iterable

import paramiko

from elkbuild.board import ssh as board_mod
from elkbuild.board.ssh import LOCK_FUNCTIONS, BoardConnection, connect, run_script, shell_assign
from elkbuild.digests import sha256_file
from elkbuild.errors import BoardError, ElkbuildError, UsageError
from elkbuild.sushi.service import SUSHI_FUNCTIONS, SushiSettings, parse_fields, plugins_in_config, \
    shell_settings

if TYPE_CHECKING:
    from elkbuild.config import Board, Config

log = logging.getLogger("elkbuild.deploy")

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
RELEASE_META = ("manifest.json", "digest", "sushi-config", "sushi-plugins")
BUNDLE_ARCH_DIR = "aarch64-linux"

# --------------------------------------------------------------------------- payload


@dataclass(frozen=True)
class PayloadFile:
    rel: str                    # path inside a release, e.g. plugins/X.vst3/Contents/...
    sha256: str
    size: int
    mode: int                   # 0o755 or 0o644
    source: Path | None = None  # a local file, or
    data: bytes | None = None   # content made in memory (a rendered config)

    def open(self) -> io.BufferedIOBase:
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.source is not None
        return self.source.open("rb")


@dataclass
class Payload:
    files: dict[str, PayloadFile] = field(default_factory=dict)
    sushi_config: str | None = None      # file name under config_files/
    plugins: list[str] = field(default_factory=list)   # bundle directory names

    def entries(self) -> dict[str, dict[str, Any]]:
        return {rel: {"sha256": f.sha256, "size": f.size, "mode": f"{f.mode:04o}"}
                for rel, f in sorted(self.files.items())}

    def digest(self) -> str:
        canon = json.dumps({"format": MANIFEST_FORMAT, "files": {
            rel: [e["sha256"], e["mode"]] for rel, e in self.entries().items()},
            "sushi_config": self.sushi_config}, sort_keys=True)
        return hashlib.sha256(canon.encode()).hexdigest()

    def manifest(self, release: str) -> dict[str, Any]:
        return {"format": MANIFEST_FORMAT, "release": release, "digest": self.digest(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "sushi_config": self.sushi_config, "plugins": sorted(self.plugins),
                "files": self.entries()}

    def expected_bundles(self) -> list[str]:
        """The deployed bundles that the Sushi config loads (checked after a start)."""
        if not self.sushi_config:
            return []
        config = self.files.get(f"config_files/{self.sushi_config}")
        if config is None:
            return []
        text = config.data if config.data is not None else config.source.read_bytes()
        return [name for name in plugins_in_config(text) if name in set(self.plugins)]


def check_name(name: str, what: str) -> str:
    """A file or directory name that is safe to carry: any text but control characters.

    Names travel as data (SFTP paths, quoted argv), never as code, so `a;touch pwned`
    is a valid, literal name; newlines are refused because remote scripts read
    lists line by line.
    """
    if not name or name in (".", "..") or "/" in name:
        raise UsageError(f"{what}: {name!r} is not a usable file name",
                         "rename it (no '/', not '.' or '..')")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise UsageError(f"{what}: {name!r} contains a control character (newline, tab...)",
                         "rename it without control characters")
    if len(name.encode()) > 255:
        raise UsageError(f"{what}: name longer than 255 bytes: {name[:40]!r}...",
                         "use a shorter name")
    return name


def _add_file(payload: Payload, rel: str, path: Path) -> None:
    info = path.stat()
    mode = 0o755 if info.st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH) else 0o644
    payload.files[rel] = PayloadFile(rel, sha256_file(path), info.st_size, mode, source=path)


def add_bundle(payload: Payload, bundle: Path) -> None:
    """A VST3 bundle directory as Sushi loads it: <Name>.vst3/Contents/aarch64-linux/<Name>.so."""
    bundle = Path(bundle)
    if not bundle.is_dir() or not bundle.name.endswith(".vst3"):
        raise UsageError(f"--plugin {str(bundle)!r}: not a .vst3 bundle directory",
                         "pass the bundle folder (Name.vst3) or a built plugin project's name")
    name = check_name(bundle.name, f"--plugin {bundle}")
    stem = name[: -len(".vst3")]
    binary = bundle / "Contents" / BUNDLE_ARCH_DIR / f"{stem}.so"
    if not binary.is_file():
        old = bundle / "Contents" / "arm64-linux"
        hint = (f"rename {old} to {BUNDLE_ARCH_DIR} (older JUCE names it arm64-linux; "
                f"Sushi looks in {BUNDLE_ARCH_DIR})" if old.is_dir()
                else "build the plugin for aarch64 (Elk's Raspberry Pi 4)")
        raise UsageError(f"--plugin {bundle}: no {binary.relative_to(bundle)} in the bundle", hint)
    if name in payload.plugins:
        raise UsageError(f"--plugin {bundle}: a bundle named {name!r} is already in this deploy",
                         "give each plugin once")
    payload.plugins.append(name)
    for directory, subdirs, files in os.walk(bundle, followlinks=True):
        subdirs.sort()
        here = Path(directory)
        for part in here.relative_to(bundle).parts:
            check_name(part, f"--plugin {bundle}")
        for file_name in sorted(files):
            check_name(file_name, f"--plugin {bundle}: file in {here}")
            rel = PurePosixPath("plugins", name, *here.relative_to(bundle).parts, file_name)
            _add_file(payload, str(rel), here / file_name)


def add_model(payload: Payload, model: Path) -> None:
    model = Path(model)
    if not model.is_file():
        raise UsageError(f"--model {str(model)!r}: no such file", "check the path")
    name = check_name(model.name, f"--model {model}")
    _add_file(payload, f"plugins/models/{name}", model)


def add_sushi_config(payload: Payload, name: str, data: bytes, source: str) -> None:
    """The config Sushi is started with (JSON checked here, before the board is touched)."""
    name = check_name(name, f"Sushi config {source}")
    if not name.endswith(".json"):
        name += ".json"
    try:
        json.loads(data)
    except ValueError as exc:
        raise UsageError(f"{source}: not valid JSON: {exc}",
                         "fix the file, or render it from a rig with --rig") from None
    rel = f"config_files/{name}"
    payload.files[rel] = PayloadFile(rel, hashlib.sha256(data).hexdigest(), len(data), 0o644,
                                     data=data)
    payload.sushi_config = name


def resolve_plugin(spec: str, cfg: Config | None) -> Path:
    """--plugin accepts a bundle path, or the name of a plugin project built before."""
    path = Path(spec).expanduser()
    if path.exists():
        return path
    if cfg is not None and cfg.build_dir.is_dir():
        wanted = spec if spec.endswith(".vst3") else f"{spec}.vst3"
        # Assembled bundles (invoke build) first: a raw CMake artefact lacks the
        # engine's libraries and never passed the ABI gate.
        found = sorted(p for p in (cfg.build_dir / "bundles").glob(f"*/{wanted}") if p.is_dir()) \
            or sorted(p for p in cfg.build_dir.rglob(wanted) if p.is_dir())
        if found:
            return max(found, key=lambda p: p.stat().st_mtime)
    raise UsageError(f"--plugin {spec!r}: no such bundle directory and no built plugin of "
                     f"that name under {cfg.build_dir if cfg else 'the build directory'}",
                     "build the plugin first, or pass the path of its .vst3 folder")


def render_rig_config(cfg: Config, rig: str, board: Board) -> tuple[str, bytes]:
    """Render a rig (a YAML file or a rig name in the configs folder) to Sushi JSON
    for the board's OS line, with the board's plugin folder in the plugin paths."""
    from elkbuild.sushi import dumps, find_rigs, render_rig

    path = find_rigs(cfg, [rig])[0]
    document = render_rig(cfg, path, board.os_version, plugin_dir=board.plugin_dir)
    return path.stem + ".json", dumps(document).encode()


def collect_payload(bundles: Iterable[Path] = (), config: tuple[str, bytes, str] | None = None,
                    models: Iterable[Path] = ()) -> Payload:
    """Everything a deploy sends: bundles, models, and (name, JSON bytes, source) config."""
    payload = Payload()
    for bundle in bundles:
        add_bundle(payload, bundle)
    for model in models:
        add_model(payload, model)
    if config is not None:
        add_sushi_config(payload, *config)
    if not payload.files:
        raise UsageError("nothing to deploy", "pass --plugin, --config or --rig")
    return payload


def part_of(rel: str) -> str:
    """A release has three parts, each replaced as a whole when a deploy names it."""
    if rel.startswith("config_files/"):
        return "config"
    if rel.startswith("plugins/models/"):
        return "models"
    return "bundles"


def inherit(payload: Payload, current: dict[str, Any] | None) -> Payload:
    """What the payload leaves out, the new release keeps from the current one:
    deploying only a config keeps the plugins, deploying only plugins keeps the
    config, deploying only models keeps both."""
    if not current:
        return payload
    given = {part_of(rel) for rel in payload.files}
    merged = Payload(dict(payload.files), payload.sushi_config, list(payload.plugins))
    for rel, entry in current.get("files", {}).items():
        if part_of(rel) not in given:
            merged.files[rel] = PayloadFile(rel, entry["sha256"], int(entry["size"]),
                                            int(entry["mode"], 8))
    if "bundles" not in given:
        merged.plugins = list(current.get("plugins", []))
    if "config" not in given:
        merged.sushi_config = current.get("sushi_config")
    return merged


# --------------------------------------------------------------------------- planning

@dataclass
class Plan:
    release: str
    uploads: list[PayloadFile]
    links: list[tuple[str, str]]      # (path in current release, path in new release)
    directories: list[str]

    @property
    def bytes_to_send(self) -> int:
        return sum(f.size for f in self.uploads)


def release_name(digest: str, now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    return f"{stamp}-{digest[:12]}"


def plan_release(payload: Payload, current: dict[str, Any] | None, release: str) -> Plan:
    """Which files must travel and which are linked from the current release."""
    have: dict[tuple[str, str], str] = {}
    for rel, entry in (current or {}).get("files", {}).items():
        have.setdefault((entry["sha256"], entry["mode"]), rel)
    uploads: list[PayloadFile] = []
    links: list[tuple[str, str]] = []
    for rel, item in sorted(payload.files.items()):
        source = have.get((item.sha256, f"{item.mode:04o}"))
        if source is not None:
            links.append((source, rel))
        elif item.source is None and item.data is None:
            raise BoardError(f"the board's current release lacks {rel}",
                             "deploy the plugins and config again in full")
        else:
            uploads.append(item)
    directories = sorted({str(PurePosixPath(rel).parent) for rel in payload.files}
                         | {"plugins", "config_files"})
    return Plan(release, uploads, links, directories)


# --------------------------------------------------------------------------- remote scripts

DEPLOY_FUNCTIONS = r'''
elk_switch() {  # RELEASE: point current at releases/RELEASE with one rename(2)
  ln -s "releases/$1" "$ROOT/current.new.$$" || return 1
  mv -fT "$ROOT/current.new.$$" "$ROOT/current" 2>/dev/null \
    || python3 -c 'import os, sys; os.replace(sys.argv[1], sys.argv[2])' "$ROOT/current.new.$$" "$ROOT/current" \
    || { rm -f "$ROOT/current.new.$$"; return 1; }
}
elk_ensure_link() {  # TARGET LINK: the stable path Sushi uses, made once
  [ -L "$2" ] && [ "$2" -ef "$1" ] && return 0
  [ "$(readlink "$2" 2>/dev/null)" = "$1" ] && return 0
  [ -d "${2%/*}" ] || mkdir -p "${2%/*}"
  if [ -L "$2" ] || [ ! -e "$2" ]; then
    ln -s "$1" "$2.elk.$$" && mv -fT "$2.elk.$$" "$2" 2>/dev/null && return 0
    rm -f "$2.elk.$$" "$2" && ln -s "$1" "$2"
    return
  fi
  # an empty folder (a fresh image) gives way; files put there by hand are kept aside
  rmdir "$2" 2>/dev/null || mv "$2" "$2.before-elkbuild.$$" || return 1
  ln -s "$1" "$2"
}
elk_current() {  # ELK_CUR := the current release's name (cd and pwd are builtins)
  ELK_CUR=""
  [ -L "$ROOT/current" ] || return 0
  ELK_CUR=$(cd -P "$ROOT/current" 2>/dev/null && pwd -P)
  ELK_CUR=${ELK_CUR##*/}
}
elk_releases() {  # the complete releases, oldest first (names sort by time)
  for elk_r in "$ROOT/releases/"*; do
    elk_r=${elk_r##*/}
    case "$elk_r" in *.partial|*.stale.*|"*") continue;; esac
    echo "$elk_r"
  done
}
elk_activate() {  # NEW PREVIOUS: switch, restart Sushi, health window; on failure go back
  elk_new=$1; elk_prev=$2
  elk_ensure_link "$ROOT/current/plugins" "$PLUGIN_DIR" \
    && elk_ensure_link "$ROOT/current/config_files" "$CONFIG_DIR" \
    || { echo "reason=cannot make $PLUGIN_DIR and $CONFIG_DIR point into $ROOT/current (read-only root? run: sudo elk_system_utils --remount-as-rw)"; return 1; }
  sushi_stop
  elk_switch "$elk_new" || { echo "reason=cannot switch $ROOT/current"; return 1; }
  echo "switched=$elk_new"
  sushi_config_of "$ROOT/current"
  if [ -z "$SUSHI_CFG" ] && [ "$SUSHI_M" = process ]; then echo "sushi=no config, not started"; return 0; fi
  if elk_start_sushi "$SUSHI_CFG" && sushi_health "$ROOT/current/sushi-plugins"; then
    echo "health=ok"; return 0
  fi
  sushi_stop
  if [ -n "$elk_prev" ] && [ -d "$ROOT/releases/$elk_prev" ] && elk_switch "$elk_prev"; then
    echo "rolled-back=$elk_prev"
    sushi_config_of "$ROOT/current"
    if { [ -n "$SUSHI_CFG" ] || [ "$SUSHI_M" = service ]; } \
       && elk_start_sushi "$SUSHI_CFG" >/dev/null && sushi_health "$ROOT/current/sushi-plugins" >/dev/null; then
      echo "previous-health=ok"
    else echo "previous-health=failed"; fi
  else
    # nothing to return to (first release): leave no current at all, as before
    rm -f "$ROOT/current"
    echo "rolled-back="
  fi
  return 2
}
elk_prune() {  # KEEP: the newest KEEP releases stay, and always the current one
  elk_current
  elk_n=0
  for elk_r in $(elk_releases); do elk_n=$((elk_n + 1)); done
  for elk_r in $(elk_releases); do
    [ "$elk_n" -le "$1" ] && break
    elk_n=$((elk_n - 1))
    [ "$elk_r" = "$ELK_CUR" ] || rm -rf "$ROOT/releases/$elk_r"
  done
}
'''


def _start_function(settings: SushiSettings) -> str:
    return f'elk_start_sushi() {{ sushi_start "$1" {shlex.join(settings.flags)}; }}\n'


def _prelude(board: Board, settings: SushiSettings) -> str:
    return (LOCK_FUNCTIONS + SUSHI_FUNCTIONS + DEPLOY_FUNCTIONS + shell_settings(settings)
            + _start_function(settings)
            + shell_assign(ROOT=board.release_root, PLUGIN_DIR=board.plugin_dir,
                           CONFIG_DIR=board.config_dir, KEEP=board.keep_releases))


LOCK_BUSY = 75


def _prepare_script(board: Board, settings: SushiSettings, lock_wait: int, digest: str) -> str:
    return _prelude(board, settings) + shell_assign(
        WHO=board_mod.lock_owner_text(), SINCE=board_mod.lock_since(), WAIT=lock_wait,
        DIGEST=digest) + r"""
elk_current
sushi_find
elk_read elk_digest "$ROOT/current/digest"
if [ -n "$ELK_CUR" ] && [ "$elk_digest" = "$DIGEST" ] && [ -n "$SUSHI_P" ] && [ ! -e "$ROOT/lock" ]; then
  # the board already runs exactly this payload and no deploy is under way
  echo "current=$ELK_CUR"
  echo "unchanged=yes"
  return 0
fi
[ -d "$ROOT/releases" ] || mkdir -p "$ROOT/releases" 2>/dev/null \
  || { echo "reason=cannot create $ROOT/releases (is $ROOT writable by $(id -un)?)"; return 3; }
elk_lock "$ROOT/lock" "$WHO" "$SINCE" "$WAIT" || return 75
echo "lock=ok"
elk_current
echo "current=$ELK_CUR"
echo "mode=$SUSHI_M"
sushi_find && echo "running=$SUSHI_P"
# leftovers of deploys that were cut short: never used, safe to drop under the lock
for elk_d in "$ROOT/releases/"*.partial "$ROOT/releases/"*.stale.* "$ROOT"/current.new.* "$ROOT"/lock.stale.*; do
  { [ -e "$elk_d" ] || [ -L "$elk_d" ]; } && rm -rf "$elk_d"
done
return 0
"""


def _link_lines(links: list[tuple[str, str]], partial: str) -> list[str]:
    """ln commands, one per destination directory where names match (fewer processes)."""
    grouped: dict[str, list[str]] = {}
    single: list[tuple[str, str]] = []
    for source, target in links:
        if PurePosixPath(source).name == PurePosixPath(target).name:
            grouped.setdefault(str(PurePosixPath(target).parent), []).append(source)
        else:
            single.append((source, target))
    lines = []
    for directory, sources in sorted(grouped.items()):
        for start in range(0, len(sources), 200):
            lines.append(shlex.join(["ln", "-f", "--", *sources[start:start + 200],
                                     f"{partial}/{directory}/"]))
    for source, target in single:
        lines.append(shlex.join(["ln", "-f", "--", source, f"{partial}/{target}"]))
    return [line + ' || { echo "reason=cannot link unchanged files"; return 1; }'
            for line in lines]


def _sync_lines(plan: Plan, partial: str) -> list[str]:
    paths = [f"{partial}/{item.rel}" for item in plan.uploads] + \
        [f"{partial}/{name}" for name in RELEASE_META]
    return [shlex.join(["sync", "--", *paths[i:i + 200]]) + " 2>/dev/null || sync"
            for i in range(0, len(paths), 200)]


def _finalize_script(board: Board, settings: SushiSettings, plan: Plan,
                     previous: str | None) -> str:
    partial = f"{board.release_root}/releases/{plan.release}.partial"
    body = _prelude(board, settings) + shell_assign(NEW=plan.release, PREV=previous or "") + r'''
# From here on the board finishes the job even if our client dies (no SIGPIPE,
# no SIGHUP); the finaliser's pid keeps the lock held until it is done.
trap '' HUP PIPE
echo "pid=$$" >>"$ROOT/lock"
'''
    body += "elk_stage() {\n"
    if plan.links:
        body += '  cd "$ROOT/current/" || { echo "reason=current release vanished"; return 1; }\n'
        body += "".join("  " + line + "\n" for line in _link_lines(plan.links, partial))
    body += r'''
  # data on disk before the release becomes visible: a power cut must not leave a
  # switched link to files still in the page cache (only what was sent needs it)
'''
    body += "".join("  " + line + "\n" for line in _sync_lines(plan, partial))
    body += r'''  mv "$ROOT/releases/$NEW.partial" "$ROOT/releases/$NEW" || { echo "reason=cannot rename the staged release"; return 1; }
}
if elk_stage; then
  elk_activate "$NEW" "$PREV"; status=$?
  if [ "$status" = 2 ]; then rm -rf "$ROOT/releases/$NEW"; fi
  [ "$status" = 0 ] && elk_prune "$KEEP"
else
  status=1; rm -rf "$ROOT/releases/$NEW.partial"
fi
elk_unlock "$ROOT/lock"
return $status
'''
    return body


def _unchanged_script(board: Board, settings: SushiSettings, release: str) -> str:
    return _prelude(board, settings) + shell_assign(NEW=release) + r'''
trap '' HUP PIPE
echo "pid=$$" >>"$ROOT/lock"
rm -rf "$ROOT/releases/$NEW.partial"
status=0
if sushi_find; then echo "running=$SUSHI_P"
else
  sushi_config_of "$ROOT/current"
  if [ -n "$SUSHI_CFG" ] || [ "$SUSHI_M" = service ]; then
    if elk_start_sushi "$SUSHI_CFG" && sushi_health "$ROOT/current/sushi-plugins"; then echo "health=ok"; else status=2; fi
  fi
fi
elk_unlock "$ROOT/lock"
return $status
'''


def _abort_script(board: Board, release: str) -> str:
    return shell_assign(ROOT=board.release_root, NEW=release) + r'''
rm -rf "$ROOT/releases/$NEW.partial"
rm -f "$ROOT/lock"
'''


# --------------------------------------------------------------------------- deploy

@dataclass
class DeployResult:
    host: str
    ok: bool
    release: str | None = None
    previous: str | None = None
    unchanged: bool = False
    files_total: int = 0
    files_sent: int = 0
    bytes_sent: int = 0
    files_linked: int = 0
    seconds: float = 0.0
    rolled_back: bool = False
    message: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


ProgressSink = Callable[[str, int, int], None]
"""progress(description, bytes_done_delta, bytes_total)"""


def _read_manifest(conn: BoardConnection, board: Board) -> dict[str, Any] | None:
    """The current release's manifest (over SFTP: no process on the board)."""
    path = f"{board.release_root}/current/{MANIFEST}"
    try:
        with conn.sftp.open(path, "rb") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    try:
        manifest = json.loads(text)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT \
            or not isinstance(manifest.get("files"), dict):
        # not ours to trust: send everything, as to a new board
        log.warning("%s: %s is damaged or of an unknown format; sending every file",
                    board.address, path)
        return None
    return manifest


def _upload(conn: BoardConnection, plan: Plan, partial: str,
            progress: ProgressSink | None) -> None:
    sftp = conn.sftp
    for item in plan.uploads:
        remote = f"{partial}/{item.rel}"
        with item.open() as source, sftp.open(remote, "wb") as target:
            target.set_pipelined(True)
            while True:
                block = source.read(32768)
                if not block:
                    break
                target.write(block)
                if progress:
                    progress(item.rel, len(block), plan.bytes_to_send)
            target.chmod(item.mode)


def _write_meta(conn: BoardConnection, partial: str, payload: Payload, release: str) -> None:
    manifest = json.dumps(payload.manifest(release), indent=1, sort_keys=True).encode()
    for name, data in (("digest", payload.digest() + "\n"),
                       ("sushi-config", (payload.sushi_config or "") + "\n"),
                       ("sushi-plugins", "".join(n + "\n" for n in
                                                 payload.expected_bundles())),
                       (MANIFEST, manifest)):
        with conn.sftp.open(f"{partial}/{name}", "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)


def deploy_to_board(board: Board, payload: Payload, settings: SushiSettings, *,
                    trust_host_key: bool = False, password: str | None = None,
                    progress: ProgressSink | None = None, lock_wait: int = 10) -> DeployResult:
    """Deploy one payload to one board; raises ElkbuildError when it cannot."""
    started = time.monotonic()
    result = DeployResult(host=board.name, ok=False)
    planned_release = release_name(payload.digest())
    with connect(board, trust_host_key=trust_host_key, password=password) as conn:
        prepared = run_script(conn, _prepare_script(board, settings, lock_wait,
                                                    payload.digest()), check=False)
        fields = parse_fields(prepared.stdout)
        if prepared.returncode == LOCK_BUSY:
            raise board_mod.lock_busy_error(board, fields.get("lock-busy", ""))
        if prepared.returncode != 0:
            reason = fields.get("reason") or prepared.stderr.strip() or "unknown"
            raise BoardError(f"{board.address}: {reason}",
                             f"make {board.release_root} writable by {board.user}")
        if fields.get("unchanged") == "yes":
            result.ok = result.unchanged = True
            result.release = result.previous = fields.get("current") or None
            result.files_total = len(payload.files)
            result.message = "unchanged"
            result.seconds = time.monotonic() - started
            return result
        holding_lock = True
        try:
            current = _read_manifest(conn, board) if fields.get("current") else None
            full = inherit(payload, current)
            result.previous = fields.get("current") or None
            result.files_total = len(full.files)
            if current is not None and full.digest() == current.get("digest"):
                result.unchanged = True
                result.release = result.previous
                holding_lock = False  # the script releases it, whatever happens
                done = run_script(conn, _unchanged_script(board, settings, planned_release),
                                  check=False)
                tail = parse_fields(done.stdout)
                if done.returncode != 0:
                    raise BoardError(f"{board.address}: nothing changed, but Sushi did not "
                                     f"start: {tail.get('reason', 'unknown')}",
                                     "see `invoke logs`")
                result.ok = True
                result.message = "unchanged" + ("" if "running" in tail else ", Sushi started")
                result.seconds = time.monotonic() - started
                return result
            release = planned_release
            _fetch_inherited_config(conn, full)
            plan = plan_release(full, current, release)
            partial = f"{board.release_root}/releases/{release}.partial"
            _sftp_makedirs(conn.sftp, partial, plan.directories)
            _upload(conn, plan, partial, progress)
            _write_meta(conn, partial, full, release)
        except BaseException:
            if holding_lock:
                try:
                    run_script(conn, _abort_script(board, planned_release), check=False,
                               timeout=30)
                except (ElkbuildError, OSError, EOFError, paramiko.SSHException):
                    pass  # the link is gone: the lock dies with our SSH session anyway
            raise
        done = run_script(conn, _finalize_script(board, settings, plan, result.previous),
                          check=False)
        tail = parse_fields(done.stdout)
        result.files_sent = len(plan.uploads)
        result.bytes_sent = plan.bytes_to_send
        result.files_linked = len(plan.links)
        result.seconds = time.monotonic() - started
        if done.returncode == 0:
            result.ok = True
            result.release = release
            result.message = tail.get("sushi", "Sushi healthy" if "health" in tail else "")
            return result
        reason = tail.get("reason") or done.stderr.strip() or "unknown"
        if done.returncode == 2:
            result.rolled_back = True
            result.release = tail.get("rolled-back") or None
            back = (f"rolled back to {result.release}" if result.release
                    else "no previous release to return to")
            if tail.get("previous-health") == "failed":
                back += " (which did not come up healthy either)"
            result.message = f"new release failed its health check: {reason}; {back}"
            return result
        raise BoardError(f"{board.address}: deploy failed: {reason}", "see `invoke logs`")


def _fetch_inherited_config(conn: BoardConnection, payload: Payload) -> None:
    """A config kept from the current release is read back: its plugin list decides
    which of the new bundles the health window expects Sushi to load."""
    rel = f"config_files/{payload.sushi_config}" if payload.sushi_config else None
    item = payload.files.get(rel) if rel else None
    if item is None or item.data is not None or item.source is not None:
        return
    with conn.sftp.open(f"{conn.board.release_root}/current/{rel}", "rb") as handle:
        data = handle.read()
    payload.files[rel] = PayloadFile(rel, item.sha256, item.size, item.mode, data=data)


def _sftp_makedirs(sftp: paramiko.SFTPClient, base: str, directories: list[str]) -> None:
    """Make `base` and every directory below it (SFTP: no process on the board)."""
    made: set[str] = set()
    wanted = [PurePosixPath(base)]
    for directory in directories:
        path = PurePosixPath(base, directory)
        wanted += [*reversed(path.parents[: len(PurePosixPath(directory).parts) - 1]), path]
    for path in wanted:
        if str(path) in made:
            continue
        try:
            sftp.mkdir(str(path))
        except OSError:
            sftp.stat(str(path))  # it exists already; anything else is a real error
        made.add(str(path))


def rollback(board: Board, settings: SushiSettings, *, trust_host_key: bool = False,
             password: str | None = None, lock_wait: int = 10) -> DeployResult:
    """Switch back to the newest release older than the current one."""
    started = time.monotonic()
    body = _prelude(board, settings) + shell_assign(WHO=board_mod.lock_owner_text(),
                                                    SINCE=board_mod.lock_since(),
                                                    WAIT=lock_wait) + r'''
elk_lock "$ROOT/lock" "$WHO" "$SINCE" "$WAIT" || return 75
trap '' HUP PIPE
echo "pid=$$" >>"$ROOT/lock"
elk_current; cur=$ELK_CUR; prev=""
for elk_r in $(elk_releases); do [ "$elk_r" = "$cur" ] && break; prev=$elk_r; done
echo "from=$cur"
if [ -z "$prev" ]; then echo "reason=no release older than ${cur:-<none>} is kept on the board"; elk_unlock "$ROOT/lock"; return 4; fi
elk_activate "$prev" "$cur"; status=$?
elk_unlock "$ROOT/lock"
return $status
'''
    with connect(board, trust_host_key=trust_host_key, password=password) as conn:
        done = run_script(conn, body, check=False)
    fields = parse_fields(done.stdout)
    result = DeployResult(host=board.name, ok=done.returncode == 0,
                          previous=fields.get("from") or None,
                          seconds=time.monotonic() - started)
    if done.returncode == LOCK_BUSY:
        raise board_mod.lock_busy_error(board, fields.get("lock-busy", ""))
    if done.returncode == 0:
        result.release = fields.get("switched")
        result.message = f"now on {result.release}"
        return result
    reason = fields.get("reason") or done.stderr.strip() or "unknown"
    if done.returncode == 2:
        result.rolled_back = True
        result.release = fields.get("rolled-back") or None
        result.message = f"the older release failed its health check: {reason}; " \
                         f"stayed on {result.release}"
        return result
    raise BoardError(f"{board.address}: rollback failed: {reason}",
                     "`invoke deploy` a known-good build instead")


def list_releases(conn: BoardConnection) -> dict[str, Any]:
    """Releases kept on the board, newest first, and which one is current."""
    root = conn.board.release_root
    body = shell_assign(ROOT=root) + r'''
r=$(readlink "$ROOT/current" 2>/dev/null); echo "current=${r##*/}"
ls -1 "$ROOT/releases" 2>/dev/null | grep -v -e '\.partial$' -e '\.stale\.' | sort -r | sed 's/^/release=/'
'''
    out = run_script(conn, body).stdout.splitlines()
    current = next((line.split("=", 1)[1] for line in out if line.startswith("current=")), "")
    releases = [line.split("=", 1)[1] for line in out if line.startswith("release=")]
    return {"current": current or None, "releases": releases}


# --------------------------------------------------------------------------- many boards

def deploy_many(boards: list[Board], payload: Payload,
                settings_of: Callable[[Board], SushiSettings], *,
                trust_host_key: bool = False, password: str | None = None,
                show_progress: bool = True, lock_wait: int = 10) -> list[DeployResult]:
    """Deploy to several boards in parallel, one progress line per board."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, \
        TransferSpeedColumn

    console = Console(stderr=True)
    columns = (TextColumn("{task.fields[host]:<14}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TextColumn("{task.description}"))
    progress = Progress(*columns, console=console, disable=not show_progress, transient=False)

    def one(board: Board) -> DeployResult:
        task = progress.add_task("connecting", host=board.name, total=None)

        def sink(description: str, delta: int, total: int) -> None:
            progress.update(task, advance=delta, total=total,
                            description=description.rsplit("/", 1)[-1][:40])

        try:
            result = deploy_to_board(board, payload, settings_of(board),
                                     trust_host_key=trust_host_key, password=password,
                                     progress=sink, lock_wait=lock_wait)
        except ElkbuildError as error:
            result = DeployResult(host=board.name, ok=False, message=error.one_line())
        except (OSError, EOFError, paramiko.SSHException) as error:
            result = DeployResult(host=board.name, ok=False,
                                  message=f"connection lost: {error or type(error).__name__}")
        progress.update(task, description="done" if result.ok else "FAILED",
                        total=max(result.bytes_sent, 1) if result.bytes_sent else 1,
                        completed=max(result.bytes_sent, 1) if result.bytes_sent else 1)
        return result

    with progress:
        if len(boards) == 1:
            return [one(boards[0])]
        with ThreadPoolExecutor(max_workers=min(8, len(boards))) as pool:
            return list(pool.map(one, boards))


def summary_table(results: list[DeployResult]):
    from rich.table import Table

    table = Table(title="deploy")
    for column in ("board", "result", "release", "sent", "bytes", "linked", "time", "note"):
        table.add_column(column, overflow="fold")
    for r in results:
        verdict = "unchanged" if r.ok and r.unchanged else "ok" if r.ok else \
            "rolled back" if r.rolled_back else "FAILED"
        table.add_row(r.host, verdict, r.release or "-", str(r.files_sent), f"{r.bytes_sent:,}",
                      str(r.files_linked), f"{r.seconds:.1f}s", r.message)
    return table
