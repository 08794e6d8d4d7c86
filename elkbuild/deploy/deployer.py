"""Deploy one payload to boards, and roll boards back: incremental, atomic, reversible.

Unchanged files are not sent: the board's manifest lists each file's SHA-256, and
a file already present (same content and mode) is copied on the board from the
current release. Releases share no inodes, so a file edited on the board changes
one release only; every deploy checks the current release against its manifest
(drift.py) and sends a changed file again, in a new release.

Remote commands per deploy (each costs a fork/exec on the board, slow under
emulation and on a busy Pi): one to lock and check, one to link, switch, restart
Sushi and check its health; files go over the executor's transfers (staging.py).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from elkbuild.board.connection import ConnectOptions
from elkbuild.board.interrupts import shielded
from elkbuild.board.ssh_executor import CONNECTION_LOST
from elkbuild.deploy import release
from elkbuild.deploy.drift import drifted_files
from elkbuild.deploy.gate import require_fit
from elkbuild.deploy.payload import Payload, inherit
from elkbuild.deploy.plan import plan_release, release_name
from elkbuild.deploy.staging import ProgressSink, fetch_inherited_config, read_manifest, stage
from elkbuild.errors import BoardError, BoardUnresponsive, ElkbuildError
from elkbuild.reporting import LOG
from elkbuild.sushi.service import SushiSettings

if TYPE_CHECKING:
    from elkbuild.config import Board



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
    repaired: list[str] | None = None
    abi_gate: str = ""          # the gate's verdict for this board's bundles
    message: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def verdict(self) -> str:
        return "unchanged" if self.ok and self.unchanged else "ok" if self.ok else \
            "rolled back" if self.rolled_back else "FAILED"


def deploy_to_board(board: Board, payload: Payload, settings: SushiSettings, *,
                    trust_host_key: bool = False, password: str | None = None,
                    progress: ProgressSink | None = None, lock_wait: int = 10,
                    dry_run: bool = False, verify: bool = False,
                    abi_check: bool = True) -> DeployResult:
    """Deploy one payload to one board; raises ElkbuildError when it cannot.

    Every bundle must first fit the board's profile (BundleMisfit otherwise, before
    any connection). With `dry_run`, the board is only read (its manifest): every
    script and transfer that would change it is logged instead. With `verify`, the
    current release is checked by SHA-256, not only by size and mtime.
    """
    verdict = require_fit(board, payload) if abi_check else "ABI gate skipped (--no-abi-check)"
    if dry_run and verdict:
        LOG.step(f"[{board.name}] {verdict}")
    options = ConnectOptions(trust_host_key=trust_host_key, password=password, dry_run=dry_run)
    with options.open(board) as conn:
        result = _deploy(conn.executor, board, payload, settings, progress, lock_wait, verify)
    result.abi_gate = verdict if payload.bundle_sources else ""
    return result


def _drift(executor, board: Board, current: dict[str, Any] | None,
           verify: bool) -> dict[str, str]:
    if current is None:
        return {}
    with executor.during("checking the current release"):
        return drifted_files(executor, board, current, verify)


def _deploy(executor, board: Board, payload: Payload, settings: SushiSettings,
            progress: ProgressSink | None, lock_wait: int, verify: bool = False) -> DeployResult:
    started = time.monotonic()
    result = DeployResult(host=board.name, ok=False)
    planned = release_name(payload.digest())
    with executor.during("the check before the deploy"):
        prepared = release.prepare(executor, board, settings, lock_wait, payload.digest())
    fields = prepared.fields
    drifted: dict[str, str] = {}
    if fields.get("unchanged") == "yes":
        with executor.during("reading the manifest"):
            current = read_manifest(executor, board)
        drifted = _drift(executor, board, current, verify)
        if not drifted:
            result.ok = result.unchanged = True
            result.release = result.previous = fields.get("current") or None
            result.files_total = len(payload.files)
            result.message = "unchanged" + (", verified by sha256" if verify else "")
            result.seconds = time.monotonic() - started
            return result
        # the board runs this payload, but not as it was sent: repair it, locked
        with executor.during("the check before the deploy"):
            fields = release.prepare(executor, board, settings, lock_wait, payload.digest(),
                                     force=True).fields
    holding_lock = True
    try:
        # a dry run took no lock and learnt nothing: read what the board has
        with executor.during("reading the manifest"):
            current = read_manifest(executor, board) \
                if fields.get("current") or executor.dry_run else None
        drifted = _drift(executor, board, current, verify)
        full = inherit(payload, current)
        result.previous = fields.get("current") or None
        result.files_total = len(full.files)
        if drifted:
            result.repaired = sorted(drifted)
        if current is not None and full.digest() == current.get("digest") and not drifted:
            result.unchanged = True
            result.release = result.previous or current.get("release")
            holding_lock = False  # the script releases it, whatever happens
            with executor.during("the unchanged check"):
                tail = release.keep_unchanged(executor, board, settings, planned)
            if tail.returncode != 0:
                raise BoardError(f"{board.address}: nothing changed, but Sushi did not "
                                 f"start: {tail.fields.get('reason', 'unknown')}",
                                 "see `invoke logs`")
            result.ok = True
            result.message = "unchanged" + ("" if "running" in tail.fields or executor.dry_run
                                            else ", Sushi started")
            result.seconds = time.monotonic() - started
            return result
        with executor.during("reading the current config"):
            fetch_inherited_config(executor, board, full)
        plan = plan_release(full, current, planned, drifted)
        with executor.during("the upload"):
            stage(executor, board, plan, full, progress)
    except BaseException as failure:
        # a board that stopped answering would only stall the abort too: the lock
        # dies with our SSH session, and the next deploy drops the staging folder
        if holding_lock and not isinstance(failure, BoardUnresponsive):
            # the one abort path, for errors and Ctrl-C alike: bounded, and not
            # itself cut short by the interrupt that brought us here
            with shielded(), executor.during("the abort after a failed deploy"):
                try:
                    release.abort(executor, board, settings, planned)
                except (ElkbuildError, *CONNECTION_LOST):
                    pass  # the link is gone: the lock dies with our SSH session anyway
        raise
    drop = result.previous if drifted and result.previous else None
    with executor.during("the release switch"):
        done = release.finalize(executor, board, settings, plan, result.previous, drop)
    result.files_sent = len(plan.uploads)
    result.bytes_sent = plan.bytes_to_send
    result.files_linked = len(plan.links)
    result.seconds = time.monotonic() - started
    if done.returncode == 0:
        result.ok = True
        result.release = planned
        result.message = "dry run: nothing changed" if executor.dry_run else \
            done.fields.get("sushi", "Sushi healthy" if "health" in done.fields else "")
        if drifted:
            shown = "; ".join(f"{rel}: {why}" for rel, why in list(drifted.items())[:3])
            more = f" and {len(drifted) - 3} more" if len(drifted) > 3 else ""
            result.message += (f"; repaired {len(drifted)} file(s) changed on the board "
                               f"({shown}{more})")
        return result
    if done.returncode == release.HEALTH_FAILED:
        result.rolled_back = True
        result.release = done.fields.get("rolled-back") or None
        back = (f"rolled back to {result.release}" if result.release
                else "no previous release to return to")
        if done.fields.get("previous-health") == "failed":
            back += " (which did not come up healthy either)"
        result.message = f"new release failed its health check: {done.reason()}; {back}"
        return result
    if done.reason() == "unknown":
        raise BoardError(f"{board.address}: the release switch ended with status "
                         f"{done.returncode} and no reason (the board killed it?)",
                         "see the board's system log; the next deploy repairs a cut one")
    raise BoardError(f"{board.address}: deploy failed: {done.reason()}", "see `invoke logs`")


def rollback(board: Board, settings: SushiSettings, *, trust_host_key: bool = False,
             password: str | None = None, lock_wait: int = 10) -> DeployResult:
    """Switch back to the newest release older than the current one."""
    started = time.monotonic()
    options = ConnectOptions(trust_host_key=trust_host_key, password=password)
    with options.open(board) as conn:
        done = release.rollback(conn.executor, board, settings, lock_wait)
    result = DeployResult(host=board.name, ok=done.returncode == 0,
                          previous=done.fields.get("from") or None,
                          seconds=time.monotonic() - started)
    if done.returncode == 0:
        result.release = done.fields.get("switched")
        result.message = f"now on {result.release}"
        return result
    if done.returncode == release.HEALTH_FAILED:
        result.rolled_back = True
        result.release = done.fields.get("rolled-back") or None
        result.message = f"the older release failed its health check: {done.reason()}; " \
                         f"stayed on {result.release}"
        return result
    raise BoardError(f"{board.address}: rollback failed: {done.reason()}",
                     "`invoke deploy` a known-good build instead")
