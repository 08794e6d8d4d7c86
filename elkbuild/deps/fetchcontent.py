"""Route a CMake project's configure-time downloads through elkbuild's source cache.

TensorFlow Lite declares each dependency with OverridableFetchContent_Declare()
in its cmake modules folder. elkbuild reads those declarations from the
(patched) source, so the pins are exactly upstream's, turns each into a cache
source, and hands CMake `FETCHCONTENT_SOURCE_DIR_<NAME>` for each plus
`FETCHCONTENT_FULLY_DISCONNECTED=ON`: the configure step never downloads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from elkbuild.errors import BuildError
from elkbuild.deps.recipes import UNKNOWN_SHA256, FetchContentSpec, Source

_DECLARE = re.compile(r"OverridableFetchContent_Declare\s*\(", re.IGNORECASE)
_KEYS = ("GIT_REPOSITORY", "GIT_TAG", "URL", "URL_HASH")
_GITHUB = re.compile(r"^https?://github\.com/([^/]+)/([^/.]+?)(?:\.git)?/?$")
_GITLAB = re.compile(r"^https?://gitlab\.com/([^/]+)/([^/.]+?)(?:\.git)?/?$")


@dataclass(frozen=True)
class Declared:
    content: str
    module: str
    values: dict[str, str]


def _tokens(body: str) -> list[str]:
    body = re.sub(r"#[^\n]*", "", body)
    return re.findall(r'"(?:[^"\\]|\\.)*"|[^\s()]+', body)


def declarations(modules_dir: Path) -> dict[str, Declared]:
    """Every OverridableFetchContent_Declare(name KEY value ...) in the folder."""
    found: dict[str, Declared] = {}
    for module in sorted(modules_dir.glob("*.cmake")):
        text = module.read_text(errors="replace")
        for match in _DECLARE.finditer(text):
            depth, end = 1, match.end()
            while end < len(text) and depth:
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                end += 1
            tokens = [t.strip('"') for t in _tokens(text[match.end():end - 1])]
            if not tokens:
                continue
            values = {}
            for key, value in zip(tokens[1:], tokens[2:]):
                if key in _KEYS and "${" not in value and value not in _KEYS:
                    values[key] = value
            found[tokens[0]] = Declared(tokens[0], module.name, values)
    return found


def archive_url(repository: str, tag: str) -> str | None:
    """The forge's archive for a commit or tag (same mapping TFLite's own module offers)."""
    hub = _GITHUB.match(repository)
    if hub:
        return f"https://github.com/{hub.group(1)}/{hub.group(2)}/archive/{tag}.tar.gz"
    lab = _GITLAB.match(repository)
    if lab:
        return f"https://gitlab.com/{lab.group(1)}/{lab.group(2)}/-/archive/{tag}/{lab.group(2)}-{tag}.tar.gz"
    return None


def to_source(declared: Declared) -> Source:
    values = declared.values
    source_id = f"fetch-{declared.content}".lower()
    if "URL" in values:
        sha = UNKNOWN_SHA256
        digest = values.get("URL_HASH", "")
        if digest.upper().startswith("SHA256="):
            sha = digest.split("=", 1)[1].lower()   # upstream's own pin
        return Source(id=source_id, kind="url", url=values["URL"], sha256=sha)
    if "GIT_REPOSITORY" in values and "GIT_TAG" in values:
        url = archive_url(values["GIT_REPOSITORY"], values["GIT_TAG"])
        if url:
            return Source(id=source_id, kind="url", url=url)
        return Source(id=source_id, kind="git", url=values["GIT_REPOSITORY"], tag=values["GIT_TAG"])
    raise BuildError(f"{declared.module}: OverridableFetchContent_Declare({declared.content}) has neither "
                     f"URL nor GIT_REPOSITORY + GIT_TAG that elkbuild can read",
                     "add the dependency as an explicit source in the recipe")


def discover(source_tree: Path, spec: FetchContentSpec, recipe_file: Path) -> list[tuple[str, Source]]:
    """(content name, cache source) for each content the recipe routes."""
    modules = source_tree / spec.modules
    if not modules.is_dir():
        raise BuildError(f"{recipe_file}: fetchcontent.modules {spec.modules!r} is not a folder of the source",
                         "fix the path (relative to the unpacked main source)")
    declared = declarations(modules)
    routed = []
    for content in spec.contents:
        if content not in declared:
            raise BuildError(f"{recipe_file}: fetchcontent.contents names {content!r}, which "
                             f"{spec.modules} does not declare",
                             f"declared there: {', '.join(sorted(declared)) or 'nothing'}")
        routed.append((content, to_source(declared[content])))
    return routed


def cmake_variable(content: str) -> str:
    """FetchContent upper-cases the content name for its override variable."""
    return f"FETCHCONTENT_SOURCE_DIR_{content.upper()}"
