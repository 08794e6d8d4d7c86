"""The release switch on the board, run as shipped scripts (scripts/*.sh):
prepare (lock, leftovers), finalize (link, sync, switch, health check, prune,
roll back on failure), keep an unchanged release, abort, roll back, list.

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
    <root>/lock                              one deploy at a time (board/lock.py)
    /home/mind/plugins      -> <root>/current/plugins        created once
    /home/mind/config_files -> <root>/current/config_files   created once

Sushi, its service unit and users' configs keep using the stable paths (1.x passes
--base-plugin-path=/home/mind/plugins; 0.11 configs name absolute plugin paths);
every deploy only replaces `current`, so Sushi sees either the whole old release
or the whole new one. A deploy cut at any point leaves `current` on the previous
complete release: staging happens in a .partial directory that is only renamed
into place once every file is there and synced.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from elkbuild.board.lock import LOCK_BUSY, LOCK_FUNCTIONS, lock_busy_error, lock_owner_text, \
    lock_since
from elkbuild.board.remote_scripts import run_script, script_text, shell_assign
from elkbuild.deploy.payload import RELEASE_META
from elkbuild.deploy.plan import Plan
from elkbuild.deploy.staging import partial_dir
from elkbuild.errors import BoardError
from elkbuild.executor import Executor
from elkbuild.sushi.service import SUSHI_FUNCTIONS, SushiSettings, parse_fields, shell_settings

if TYPE_CHECKING:
    from elkbuild.config import Board

SCRIPTS = Path(__file__).resolve().parent / "scripts"
RELEASE_FUNCTIONS = script_text("release.sh", SCRIPTS)
HEALTH_FAILED = 2
"""Exit status of a switch whose new release failed its health check (rolled back)."""
BATCH = 200
"""Paths per `ln`/`sync` command: fewer processes, well below ARG_MAX."""


@dataclass(frozen=True)
class Outcome:
    """What one remote script said: its exit status and key=value fields."""

    returncode: int
    fields: dict[str, str]
    stderr: str = ""

    def reason(self) -> str:
        return self.fields.get("reason") or self.stderr.strip() or "unknown"


def _prelude(board: Board, settings: SushiSettings) -> str:
    return (LOCK_FUNCTIONS + SUSHI_FUNCTIONS + RELEASE_FUNCTIONS + shell_settings(settings)
            + shell_assign(ROOT=board.release_root, PLUGIN_DIR=board.plugin_dir,
                           CONFIG_DIR=board.config_dir, KEEP=board.keep_releases))


def _run(executor: Executor, board: Board, settings: SushiSettings, name: str,
         timeout: float | None = None, **values: object) -> Outcome:
    body = _prelude(board, settings) + shell_assign(**values) + script_text(name, SCRIPTS)
    done = run_script(executor, body, check=False, timeout=timeout, label=f"deploy/{name}")
    return Outcome(done.returncode, parse_fields(done.stdout), done.stderr)


PREPARE_NOT_WRITABLE = 3
ABORT_SECONDS = 10.0
"""The abort step's bound: a board that does not answer by then frees the lock
anyway when our SSH session ends."""


def prepare(executor: Executor, board: Board, settings: SushiSettings, lock_wait: int,
            digest: str, force: bool = False) -> Outcome:
    """Take the lock (or say the board already runs `digest`: fields["unchanged"];
    never with `force`, which is for repairing that release)."""
    outcome = _run(executor, board, settings, "prepare.sh",
                   timeout=float(lock_wait) + getattr(executor, "command_timeout", 60.0),
                   WHO=lock_owner_text(), SINCE=lock_since(), WAIT=lock_wait, DIGEST=digest,
                   FORCE="1" if force else "")
    if outcome.returncode == LOCK_BUSY:
        raise lock_busy_error(board, outcome.fields.get("lock-busy", ""))
    if outcome.returncode == PREPARE_NOT_WRITABLE:
        raise BoardError(f"{board.address}: {outcome.reason()}",
                         f"make {board.release_root} writable by {board.user}")
    if outcome.returncode != 0:
        raise BoardError(f"{board.address}: the board's check before the deploy ended with "
                         f"status {outcome.returncode}: {outcome.reason()}",
                         "see the board's system log; a full /udata or a failing disk "
                         "shows this way")
    return outcome


def keep_unchanged(executor: Executor, board: Board, settings: SushiSettings,
                   release: str) -> Outcome:
    """Nothing changed: release the lock, start Sushi if it does not run."""
    return _run(executor, board, settings, "unchanged.sh", NEW=release)


def abort(executor: Executor, board: Board, settings: SushiSettings, release: str) -> None:
    """Drop a staged release and the lock after a failure before the finaliser."""
    _run(executor, board, settings, "abort.sh", timeout=ABORT_SECONDS, NEW=release)


def finalize(executor: Executor, board: Board, settings: SushiSettings, plan: Plan,
             previous: str | None, drop: str | None = None) -> Outcome:
    """Copy, sync, rename into place, switch, health-check; roll back on failure.
    `drop`: a release found changed on the board, removed once the new one is up."""
    partial = partial_dir(board, plan.release)
    body = (_prelude(board, settings)
            + shell_assign(NEW=plan.release, PREV=previous or "", DROP=drop or "")
            + _stage_files_function(plan, partial) + script_text("finalize.sh", SCRIPTS))
    # the health window and Sushi's start come on top of the usual bound
    bound = getattr(executor, "command_timeout", 60.0) + 2 * settings.health_seconds
    done = run_script(executor, body, check=False, timeout=bound, label="deploy/finalize.sh")
    return Outcome(done.returncode, parse_fields(done.stdout), done.stderr)


def rollback(executor: Executor, board: Board, settings: SushiSettings,
             lock_wait: int) -> Outcome:
    """Switch back to the newest release older than the current one."""
    outcome = _run(executor, board, settings, "rollback.sh", WHO=lock_owner_text(),
                   SINCE=lock_since(), WAIT=lock_wait)
    if outcome.returncode == LOCK_BUSY:
        raise lock_busy_error(board, outcome.fields.get("lock-busy", ""))
    return outcome


def list_releases(executor: Executor, board: Board) -> dict[str, Any]:
    """Releases kept on the board, newest first, and which one is current."""
    body = shell_assign(ROOT=board.release_root) + script_text("releases.sh", SCRIPTS)
    out = run_script(executor, body, label="deploy/releases.sh").stdout.splitlines()
    current = next((line.split("=", 1)[1] for line in out if line.startswith("current=")), "")
    releases = [line.split("=", 1)[1] for line in out if line.startswith("release=")]
    return {"current": current or None, "releases": releases}


def link_lines(links: list[tuple[str, str]], partial: str) -> list[str]:
    """cp commands, one per destination directory where names match (fewer processes).

    Copies, not hard links: a file edited in place on the board (by hand, or a
    plugin writing next to its model) must not change every release sharing its
    inode. `cp -p` keeps the mode and the mtime the drift check compares.
    """
    grouped: dict[str, list[str]] = {}
    single: list[tuple[str, str]] = []
    for source, target in links:
        if PurePosixPath(source).name == PurePosixPath(target).name:
            grouped.setdefault(str(PurePosixPath(target).parent), []).append(source)
        else:
            single.append((source, target))
    lines = []
    for directory, sources in sorted(grouped.items()):
        for start in range(0, len(sources), BATCH):
            lines.append(shlex.join(["cp", "-p", "--", *sources[start:start + BATCH],
                                     f"{partial}/{directory}/"]))
    for source, target in single:
        lines.append(shlex.join(["cp", "-p", "--", source, f"{partial}/{target}"]))
    return [line + ' || { echo "reason=cannot copy unchanged files from the current release '
            '(disk full?)"; return 1; }' for line in lines]


def sync_lines(plan: Plan, partial: str) -> list[str]:
    paths = [f"{partial}/{item.rel}" for item in plan.uploads] + \
        [f"{partial}/{target}" for _source, target in plan.links] + \
        [f"{partial}/{name}" for name in RELEASE_META]
    return [shlex.join(["sync", "--", *paths[i:i + BATCH]]) + " 2>/dev/null || sync"
            for i in range(0, len(paths), BATCH)]


def _stage_files_function(plan: Plan, partial: str) -> str:
    """elk_stage_files for finalize.sh: this plan's links and syncs, every word quoted.

    Data reaches the disk before the release becomes visible: a power cut must not
    leave a switched link to files still in the page cache (only what was sent
    needs it).
    """
    lines = []
    if plan.links:
        lines.append('cd "$ROOT/current/" || { echo "reason=current release vanished"; return 1; }')
        lines += link_lines(plan.links, partial)
    lines += sync_lines(plan, partial)
    return "elk_stage_files() {\n" + "".join(f"  {line}\n" for line in lines) + "}\n"
