"""Rig -> Sushi JSON for one Sushi version, validated before anything is written.

The JSON text comes from the jinja2 templates in templates/sushi/ (one per version,
sharing _macros.j2). Before rendering, the rig is checked against what the chosen
version can express: a rig feature the version lacks is an error naming the rig and
the key, never dropped. After rendering, the result goes through the same checker as
`invoke sushi-check` (Sushi's schemas plus Sushi's loader rules).
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

import jinja2

from elkbuild.errors import MISSING, SushiConfigError, UsageError, ValidationFailed
from elkbuild.plugin.identity import DEFAULT_INSTALL_DIR, DEFAULT_PLUGINS_DIR
from elkbuild.sushi.check import check_document, json_path
from elkbuild.sushi.rig import Rig, load_rig
from elkbuild.sushi.versions import INTERNAL_PLUGINS, VERSIONS

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates" / "sushi"
RIG_SUFFIXES = (".yaml", ".yml")


class ConfigLike(Protocol):
    """The part of elkbuild.config.Config this module reads."""

    root: Path

    def get(self, path: str, default: Any = None) -> Any: ...


# --------------------------------------------------------------------------- version fit

def _not_on_0_11(rig: Rig, key: tuple[str | int, ...], what: str, hint: str) -> SushiConfigError:
    return SushiConfigError(rig.source, json_path(key), MISSING,
                            f"is a Sushi 1.x feature ({what}); Sushi 0.11 cannot express it",
                            hint)


def check_fits(rig: Rig, version: str) -> None:
    """Refuse rig features that `version` of Sushi lacks (first one found)."""
    for track in rig.all_tracks():
        for plugin in track.plugins:
            if plugin.type == "internal" and plugin.uid not in INTERNAL_PLUGINS[version]:
                close = difflib.get_close_matches(plugin.uid or "",
                                                  sorted(INTERNAL_PLUGINS[version]), n=1)
                raise SushiConfigError(rig.source, json_path(plugin.where + ("uid",)), plugin.uid,
                                       f"is not an internal plugin of Sushi {version}",
                                       f"did you mean {close[0]!r}?" if close else
                                       "internal plugins are sushi.testing.<name> (and "
                                       "sushi.brickworks.<name> on newer 1.x)")
    if version != "0.11":
        return
    for key, name in (("pre_track", "a pre track"), ("post_track", "a post track")):
        if getattr(rig, key) is not None:
            raise _not_on_0_11(rig, (key,), name, "move its plugins into a track, or render "
                               "with --os 1.x")
    for name, state in rig.states():
        raise _not_on_0_11(rig, state.first_key(), f"initial state of {name!r}",
                           "on 0.11 set parameters with `events:` at time 0, or render with "
                           "--os 1.x")
    for key in ("master_limiter", "rt_midi_inputs", "rt_midi_outputs"):
        if key in rig.host:
            raise _not_on_0_11(rig, ("host", key), key.replace("_", " "), "remove it for 0.11")
    if rig.midi.clock_output is not None:
        raise _not_on_0_11(rig, ("midi", "clock_output"), "MIDI clock output",
                           "remove it for 0.11")
    for track in rig.tracks:
        if track.channels is not None and track.channels > 2:
            raise SushiConfigError(rig.source, json_path(track.where + ("channels",)),
                                   track.channels, "Sushi 0.11 tracks are mono (1) or stereo "
                                   "(2)", "use `buses: N` for a wider track")


# --------------------------------------------------------------------------- rendering

def _json_filter(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value, ensure_ascii=False)


@functools.lru_cache(maxsize=None)
def _environment(template_dir: Path = TEMPLATE_DIR) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir)),
                             undefined=jinja2.StrictUndefined, autoescape=False,
                             keep_trailing_newline=True)
    env.filters["json"] = _json_filter
    return env


def render(rig: Rig, version: str) -> dict[str, Any]:
    """The Sushi config for `rig` as a JSON document, checked as Sushi would check it."""
    if version not in VERSIONS:
        raise UsageError(f"unknown Sushi version {version!r}", "use 0.11 or 1.x")
    check_fits(rig, version)
    text = _environment().get_template(f"config-{version}.json.j2").render(rig=rig,
                                                                          version=version)
    doc = json.loads(text)
    verify(doc, version, f"{rig.source} rendered for Sushi {version}")
    return doc


def verify(doc: Any, version: str, subject: str) -> None:
    report = check_document(doc, version)
    if not report.ok:
        raise ValidationFailed(f"{subject} would be refused by Sushi", report.problems,
                               "the rig passed elkbuild's checks, so this is an elkbuild bug; "
                               "please report it with the rig")


def dumps(doc: dict[str, Any]) -> str:
    """The one text form of a rendered config (stable, so golden files can pin it)."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- project wiring

def plugin_install_dir(cfg: ConfigLike) -> str:
    return cfg.get("project.plugin_install_dir", DEFAULT_INSTALL_DIR) or DEFAULT_INSTALL_DIR


def configs_dir(cfg: ConfigLike) -> Path:
    return cfg.root / (cfg.get("sushi.configs_dir", "sushi-configs") or "sushi-configs")


def rendered_dir(cfg: ConfigLike) -> Path:
    return cfg.root / (cfg.get("sushi.rendered_dir") or "sushi-configs/rendered")


def rendered_path(cfg: ConfigLike, rig_path: Path, version: str) -> Path:
    return rendered_dir(cfg) / f"{rig_path.stem}.{version}.json"


def render_rig(cfg: ConfigLike, rig_path: Path, os_version: str,
               plugin_dir: str | None = None) -> dict[str, Any]:
    """Load, validate and render one rig. `plugin_dir` overrides where the board keeps
    plugins (deploy passes the board's plugin_dir)."""
    projects = cfg.root / (cfg.get("project.plugins_dir", DEFAULT_PLUGINS_DIR)
                           or DEFAULT_PLUGINS_DIR)
    rig = load_rig(Path(rig_path), projects, plugin_dir or plugin_install_dir(cfg))
    return render(rig, os_version)


def write_config(doc: dict[str, Any], dest: Path, os_version: str,
                 subject: str | None = None) -> bool:
    """Validate `doc` for `os_version`, then write it atomically (temp file + rename).

    Nothing is written when it is invalid. Returns False when `dest` already held
    exactly this text (the file is then left untouched, keeping its timestamp).
    """
    verify(doc, os_version, subject or str(dest))
    text = dumps(doc)
    dest = Path(dest)
    if dest.is_file() and dest.read_text(encoding="utf-8") == text:
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def find_rigs(cfg: ConfigLike, names: Sequence[str]) -> list[Path]:
    """Rig files for the names given on the command line; all rigs when none is given.

    A name is a path to a rig file, or the name of a rig in the configs folder
    (`neural-mono` for sushi-configs/neural-mono.yaml).
    """
    folder = configs_dir(cfg)
    if not names:
        rigs = sorted(p for p in folder.glob("*") if p.suffix in RIG_SUFFIXES and p.is_file())
        if not rigs:
            raise UsageError(f"no rigs (*.yaml) in {folder}",
                             "add a rig there or name a rig file on the command line")
        return rigs
    found = []
    for name in names:
        candidates = [Path(name), cfg.root / name] + [folder / f"{name}{s}" for s in RIG_SUFFIXES]
        match = next((c for c in candidates if c.is_file()), None)
        if match is None and Path(name).is_dir():
            raise UsageError(f"{name} is a folder, not a rig file",
                             "give a rig's .yaml file, or its name in sushi-configs/")
        if match is None:
            known = ", ".join(p.stem for p in sorted(folder.glob("*"))
                              if p.suffix in RIG_SUFFIXES) or "none"
            raise UsageError(f"no rig named {name!r} (looked for a file and in {folder}; "
                             f"known: {known})", "give a rig name or the path of a rig file")
        if match.suffix not in RIG_SUFFIXES:
            raise UsageError(f"{match} is not a rig: rigs are YAML files (.yaml/.yml)",
                             "use `invoke sushi-check` for Sushi JSON files")
        found.append(match)
    return found


@dataclass(frozen=True)
class Rendered:
    rig: Path
    version: str
    dest: Path
    doc: dict[str, Any]
    changed: bool = False
    up_to_date: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"rig": str(self.rig), "os_version": self.version, "file": str(self.dest),
                "changed": self.changed, "up_to_date": self.up_to_date}


def render_rigs(cfg: ConfigLike, names: Sequence[str], versions: Sequence[str],
                out: Path | None = None, check_only: bool = False) -> list[Rendered]:
    """Render every named rig for every version; write them only when all succeed.

    With `check_only`, nothing is written: each result says whether the file on disk
    matches what the rig renders to now.
    """
    rigs = find_rigs(cfg, names)
    if out is not None and len(rigs) * len(versions) != 1:
        raise UsageError("--out names one file, but this renders "
                         f"{len(rigs) * len(versions)} configs",
                         "name one rig and one --os with --out, or leave --out away")
    planned = []
    for rig_path in rigs:
        for version in versions:
            doc = render_rig(cfg, rig_path, version)
            dest = Path(out) if out is not None else rendered_path(cfg, rig_path, version)
            planned.append((rig_path, version, dest, doc))
    results = []
    for rig_path, version, dest, doc in planned:
        current = dest.read_text(encoding="utf-8") if dest.is_file() else None
        up_to_date = current == dumps(doc)
        changed = False
        if not check_only:
            changed = write_config(doc, dest, version, f"{rig_path} rendered for Sushi {version}")
        results.append(Rendered(rig_path, version, dest, doc, changed, up_to_date))
    return results
