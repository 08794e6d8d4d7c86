"""`invoke config`: the effective configuration, one line per key, with its origin."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from elkbuild.reporting import emit_json
from elkbuild.config import Config
from elkbuild.errors import UsageError


def print_config(cfg: Config, prefix: str = "", as_json: bool = False) -> None:
    rows = [(path, value, origin) for path, value, origin in cfg.items()
            if not prefix or path == prefix or path.startswith(prefix + ".")]
    if prefix and not rows:
        raise UsageError(f"no configuration key {prefix!r}",
                         "run `invoke config` to list every key")
    if as_json:
        emit_json({path: {"value": value, "origin": origin} for path, value, origin in rows})
        return
    table = Table(title=f"elkbuild configuration ({cfg.root})", title_justify="left")
    for column in ("key", "value", "from"):
        table.add_column(column, overflow="fold")
    for path, value, origin in rows:
        table.add_row(path, "" if value is None else str(value), origin)
    Console().print(table)
