"""Tasks: deploy, rollback and Sushi on the board(s)."""

from __future__ import annotations

from pathlib import Path

from tasks.targets import FLAG_LABELS, board_task, report_deploys, report_sushi

_JSON_HELP = {"json": "print the result as JSON"}
_RUN_HELP = {**_JSON_HELP,
             "config": "config name in config_files/ or absolute path (default: the current "
                       "release's)"}


@board_task(sushi=True, iterable=("plugin", "model"), help={
    "plugin": "a .vst3 bundle folder or a built plugin project's name (repeatable)",
    "model": "a model file to put in plugins/models/ (repeatable)",
    "config": "a ready Sushi JSON config to deploy and start",
    "rig": "a rig (YAML file or name in sushi-configs/) rendered to the Sushi "
           "config for the board's OS",
    "json": "print one JSON result (files and bytes sent per board)",
    "no_progress": "no progress bars",
    "verify": "check every file of the board's current release by SHA-256 (not only size "
              "and mtime); files changed there are sent again",
    "dry_run": "print the ABI gate's verdict and each remote script and transfer that "
               "would happen; change nothing",
    "abi_check": "--no-abi-check: send bundles without checking them against the board's "
                 "profile (glibc, libstdc++, architecture, libraries); a misfit may then "
                 "fail to load on the board"})
def deploy(c, targets, plugin=None, model=None, config="", rig="", json=False,
           no_progress=False, verify=False, dry_run=False, abi_check=True):
    """Send plugins and a Sushi config to the board(s): incremental, atomic, health-checked."""
    import sys

    from elkbuild.deploy.many import deploy_many
    from elkbuild.deploy.request import DeployRequest, build_payload

    request = DeployRequest(plugins=plugin or (), models=model or (), config=config, rig=rig,
                            labels=FLAG_LABELS)
    payload = build_payload(targets.cfg, request, targets.boards)
    group = deploy_many(targets.boards, payload, targets.settings_of(),
                        options=targets.connect_options(dry_run=dry_run),
                        show_progress=not (json or no_progress) and sys.stderr.isatty(),
                        verify=bool(verify), abi_check=bool(abi_check))
    results = list(group)
    report_deploys(group, json, extra={"files_sent": sum(r.files_sent for r in results),
                                       "bytes_sent": sum(r.bytes_sent for r in results)},
                   table=True)


@board_task(sushi=True, help=_JSON_HELP)
def rollback(c, targets, json=False):
    """Return the board(s) to the previous release and restart Sushi."""
    from elkbuild.deploy.many import rollback_many

    report_deploys(rollback_many(targets.boards, targets.settings_of(),
                                 options=targets.connect_options()), json, reraise=True)


@board_task(help={"key": "public key file (default ~/.ssh/id_*.pub)"})
def ssh_setup(c, targets, key=""):
    """Install your SSH public key on the board (logs in with the password once)."""
    from elkbuild.board.authorized_keys import default_public_key, install_public_key

    key_file = Path(key).expanduser() if key else default_public_key()
    line = key_file.read_text()
    # the key is not there yet: log in with the password
    options = targets.connect_options(ask=True)
    for b in targets.boards:
        with options.open(b) as conn:
            added = install_public_key(conn.executor, line)
        print(f"{b.name}: {'installed' if added else 'already had'} {key_file}")


def _sushi(action, targets, config="", json=False):
    from elkbuild.deploy.control import sushi_on_boards

    report_sushi(sushi_on_boards(targets.boards, action, targets.settings_of(),
                                 targets.connect_options(), config or None), json)


@board_task(sushi=True, help=_RUN_HELP)
def start(c, targets, config="", json=False):
    """Start Sushi on the board(s) (service where present, else a detached process)."""
    _sushi("start", targets, config, json)


@board_task(sushi=True, help=_RUN_HELP)
def restart(c, targets, config="", json=False):
    """Stop and start Sushi on the board(s)."""
    _sushi("restart", targets, config, json)


@board_task(help=_JSON_HELP)
def stop(c, targets, json=False):
    """Stop Sushi on the board(s)."""
    _sushi("stop", targets, json=json)


@board_task(help=_JSON_HELP)
def status(c, targets, json=False):
    """Is Sushi running on the board(s), with which release and config."""
    _sushi("status", targets, json=json)


@board_task(many=False, help={"follow": "keep printing new lines",
                              "lines": "how many lines to show (default 100)"})
def logs(c, targets, follow=False, lines=100):
    """Show Sushi's log on the board (journal for the service, log files otherwise)."""
    from elkbuild.sushi import service as sushi_service

    board = targets.only()
    with targets.connect_options().open(board) as conn:
        try:
            for line in sushi_service.logs(conn, targets.settings_of()(board), int(lines),
                                           follow):
                print(line, flush=True)
        except KeyboardInterrupt:
            pass
