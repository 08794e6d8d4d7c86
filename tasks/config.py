"""Tasks: the effective configuration."""

from __future__ import annotations

from elkbuild.cli import elk_task

from tasks.shell import load


@elk_task(help={"json": "print the configuration as one JSON object (value and origin per key)",
                "key": "show only keys under this path, e.g. boards.studio"})
def config(c, key="", json=False):
    """Print the effective configuration and where each value came from."""
    from elkbuild.config_report import print_config

    print_config(load(), prefix=key, as_json=json)
