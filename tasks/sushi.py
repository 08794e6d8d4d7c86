"""Tasks: Sushi configurations (render, check)."""

from __future__ import annotations

from pathlib import Path

from elkbuild.cli import elk_task

from elkbuild.config import Config
from tasks.shell import load


def _sushi_versions(os_flag: str | None) -> tuple[Config, list[str]]:
    """The configuration (a single --os version as its sushi.os_version) and the
    Sushi versions to render."""
    from elkbuild.sushi import VERSIONS, normalize_version

    if os_flag in ("all", "both"):
        return load(), list(VERSIONS)
    cfg = load({"sushi.os_version": normalize_version(os_flag) if os_flag else None})
    return cfg, [normalize_version(cfg.get("sushi.os_version", "1.x"))]


@elk_task(help={"rig": "a rig name in sushi-configs/ or a rig file; repeat the flag or "
                       "separate with commas for several; all rigs when left out",
                "os": "Sushi version: 0.11, 1.x or all (default: sushi.os_version, 1.x)",
                "out": "write to this file instead of sushi-configs/rendered/<rig>.<os>.json "
                       "(one rig, one version)",
                "check": "write nothing; fail when a rendered file differs from its rig",
                "json": "print one JSON object per rendered config"},
          iterable=["rig"])
def sushi_config(c, rig=None, os=None, out=None, check=False, json=False):
    """Render rigs (YAML) to Sushi JSON configs, validated as Sushi would before writing."""
    from elkbuild.reporting import emit_json
    from elkbuild.errors import ValidationFailed
    from elkbuild.sushi import render_rigs

    names = [n.strip() for item in rig or [] for n in item.split(",") if n.strip()]
    cfg, versions = _sushi_versions(os or ("all" if check else None))
    results = render_rigs(cfg, names, versions, Path(out) if out else None, check_only=check)
    for result in results:
        shown = result.dest.relative_to(cfg.root) if result.dest.is_relative_to(cfg.root) \
            else result.dest
        if json:
            emit_json(result.as_dict())
        elif check:
            print(f"{'up to date' if result.up_to_date else 'OUT OF DATE'}: {shown}")
        else:
            print(f"{'wrote' if result.changed else 'unchanged'}: {shown}")
    stale = [r for r in results if not r.up_to_date]
    if check and stale:
        raise ValidationFailed("rendered Sushi configs differ from their rigs",
                               [f"{r.dest}: differs from what {r.rig} renders to" for r in stale],
                               "run `invoke sushi-config` and commit the result")


@elk_task(help={"file": "the Sushi JSON file to check",
                "os": "Sushi version to check against: 0.11 or 1.x (default: guessed from "
                      "the file's shape)",
                "json": "print the verdict as one JSON object"})
def sushi_check(c, file, os=None, json=False):
    """Check a Sushi JSON config: exit 0 when Sushi would accept it, else one line a problem."""
    import sys

    from invoke.exceptions import Exit

    from elkbuild.reporting import PROG, emit_json
    from elkbuild.errors import ValidationFailed
    from elkbuild.sushi import check_file, normalize_version

    verdict = check_file(Path(file), normalize_version(os) if os else None)
    if json:
        emit_json(verdict.as_dict())
        if not verdict.ok:
            raise Exit(code=1)
        return
    assumed = (f" (assumed Sushi {verdict.version}: {verdict.assumed}; pass --os to choose)"
               if verdict.assumed else "")
    for warning in verdict.json_warnings + verdict.report.warnings:
        print(f"{PROG}: warning: {file}: {warning}", file=sys.stderr)
    if not verdict.ok:
        raise ValidationFailed(f"{file}: Sushi {verdict.version} would refuse it{assumed}",
                               verdict.report.problems)
    print(f"{file}: accepted by Sushi {verdict.version}{assumed}")
