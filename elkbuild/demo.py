"""`invoke demo`: the main job on defaults, end to end as far as the pipeline reaches.

Today: every example rig rendered for both Sushi formats, validated before it is
written, then read back and checked as `invoke sushi-check` would before a deploy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .config import Config
from .errors import ValidationFailed
from .sushi import VERSIONS, check_file, render_rigs


@dataclass(frozen=True)
class DemoStep:
    what: str
    detail: str


def run_demo(cfg: Config, say: Callable[[DemoStep], None]) -> list[DemoStep]:
    """Render and check every rig; raise ValidationFailed if any config is refused."""
    steps: list[DemoStep] = []

    def step(what: str, detail: str) -> None:
        steps.append(DemoStep(what, detail))
        say(steps[-1])

    rendered = render_rigs(cfg, [], list(VERSIONS))
    for result in rendered:
        step("rendered", f"{result.rig.stem} for Sushi {result.version} -> "
                         f"{result.dest.relative_to(cfg.root)}")
    refused = []
    for result in rendered:
        verdict = check_file(result.dest, result.version)
        if not verdict.ok:
            refused += [f"{result.dest}: {p}" for p in verdict.report.problems]
        step("checked", f"{result.dest.name}: "
                        f"{'accepted' if verdict.ok else 'REFUSED'} by Sushi {result.version}")
    if refused:
        raise ValidationFailed("demo: rendered configs Sushi would refuse", refused)
    return steps
