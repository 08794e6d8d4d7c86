"""Sushi configuration: rigs (YAML) rendered to Sushi's JSON and checked like Sushi does.

- rig.py      the rig model, read from YAML and validated with precise key paths
- render.py   rig -> JSON through templates/sushi/, version fit, atomic writing
- check.py    what Sushi accepts: its schemas, its loader rules, cross-references
- versions.py facts that differ between Sushi 0.11 and 1.x
"""

from __future__ import annotations

from elkbuild.sushi.check import FileVerdict, Report, check_document, check_file, detect_version
from elkbuild.sushi.render import dumps, find_rigs, render, render_rig, render_rigs, write_config
from elkbuild.sushi.rig import Rig, load_rig
from elkbuild.sushi.versions import VERSIONS, normalize_version

__all__ = [
    "VERSIONS", "FileVerdict", "Report", "Rig", "check_document", "check_file",
    "detect_version", "dumps", "find_rigs", "load_rig", "normalize_version", "render", "render_rig",
    "render_rigs", "write_config",
]
