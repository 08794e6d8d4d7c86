"""What the user asked to deploy, turned into a payload: plugin bundles (a path or
a built project's name), models, and the Sushi config (a ready JSON file, or a
rig rendered for the boards' OS)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from elkbuild.deploy.payload import Payload, collect_payload
from elkbuild.errors import UsageError

if TYPE_CHECKING:
    from elkbuild.config import Board, Config


@dataclass(frozen=True)
class DeployRequest:
    """Values as the user gave them; `labels` name them in messages (e.g. by flag)."""

    plugins: Sequence[str] = ()
    models: Sequence[str] = ()
    config: str = ""                 # a Sushi JSON file
    rig: str = ""                    # a rig file or name, rendered per OS line
    labels: dict[str, str] = field(default_factory=dict)

    def label(self, kind: str, value: str) -> str:
        return f"{self.labels.get(kind, kind)} {value!r}"


def resolve_plugin(spec: str, cfg: Config | None, what: str | None = None) -> Path:
    """A bundle path, or the name of a plugin project built before."""
    what = what or f"plugin {spec!r}"
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
    raise UsageError(f"{what}: no such bundle directory and no built plugin of "
                     f"that name under {cfg.build_dir if cfg else 'the build directory'}",
                     "build the plugin first, or pass the path of its .vst3 folder")


def render_rig_config(cfg: Config, rig: str, board: Board) -> tuple[str, bytes]:
    """Render a rig (a YAML file or a rig name in the configs folder) to Sushi JSON
    for the board's OS line, with the board's plugin folder in the plugin paths."""
    from elkbuild.sushi import dumps, find_rigs, render_rig

    path = find_rigs(cfg, [rig])[0]
    document = render_rig(cfg, path, board.os_version, plugin_dir=board.plugin_dir)
    return path.stem + ".json", dumps(document).encode()


def sushi_config(cfg: Config, request: DeployRequest,
                 boards: Sequence[Board]) -> tuple[str, bytes, str] | None:
    """(file name, JSON bytes, source) of the config to deploy, or None."""
    if request.config and request.rig:
        raise UsageError(f"{request.label('config', request.config)} and "
                         f"{request.label('rig', request.rig)} both given", "give one of them")
    if request.config:
        path = Path(request.config)
        if not path.is_file():
            raise UsageError(f"{request.label('config', request.config)}: no such file",
                             "check the path")
        return path.name, path.read_bytes(), str(path)
    if request.rig:
        if len({(b.os_version, b.plugin_dir) for b in boards}) != 1:
            raise UsageError(f"{request.label('rig', request.rig)} for boards of different OS "
                             f"versions or plugin folders",
                             "deploy to each kind of board separately")
        name, data = render_rig_config(cfg, request.rig, boards[0])
        return name, data, request.rig
    return None


def build_payload(cfg: Config, request: DeployRequest, boards: Sequence[Board]) -> Payload:
    """The payload for `request` on these boards (checked before any board is touched)."""
    config = sushi_config(cfg, request, boards)
    bundles = [resolve_plugin(p, cfg, request.label("plugin", p)) for p in request.plugins]
    labels = {b: request.label("plugin", p) for b, p in zip(bundles, request.plugins)}
    models = [Path(m) for m in request.models]
    labels.update({m: request.label("model", str(m)) for m in models})
    return collect_payload(bundles, config, models, labels=labels)
