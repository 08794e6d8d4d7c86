"""Apply unified-diff patches to a source tree, all or nothing.

Every hunk of every file is matched first, in memory; only when all of them fit
are the files written. A hunk that does not fit fails with the patch, the file
it targets, the hunk's number and header, and the first line that differs, so
"the patch no longer applies" says exactly where upstream moved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from elkbuild.errors import BuildError

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
FUZZ_LINES = 200
"""How far (in lines) a hunk may have drifted from its recorded position."""


class PatchFailed(BuildError):
    """A patch does not apply; names the patch, the file and the hunk."""


@dataclass
class Hunk:
    number: int
    header: str
    old_start: int
    old: list[str] = field(default_factory=list)    # context + removed lines
    new: list[str] = field(default_factory=list)    # context + added lines


@dataclass
class FilePatch:
    path: str
    hunks: list[Hunk] = field(default_factory=list)


def _strip(path: str, levels: int) -> str:
    path = path.split("\t")[0].strip()
    parts = path.split("/")
    return "/".join(parts[levels:]) if len(parts) > levels else parts[-1]


def parse_patch(text: str, patch_name: str, strip: int = 1) -> list[FilePatch]:
    files: list[FilePatch] = []
    current: FilePatch | None = None
    hunk: Hunk | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            current = FilePatch(_strip(lines[i + 1][4:], strip))
            files.append(current)
            hunk = None
            i += 2
            continue
        match = _HUNK.match(line)
        if match:
            if current is None:
                raise PatchFailed(f"patch {patch_name}: hunk at line {i + 1} comes before any '---'/'+++' file header",
                                  "regenerate the patch with `diff -u` or `git diff`")
            hunk = Hunk(number=len(current.hunks) + 1, header=line.split("@@")[1].strip(),
                        old_start=int(match.group(1)))
            current.hunks.append(hunk)
            # The header's line counts say where the hunk ends; anything after it
            # (a git signature "-- ", prose) is not part of the hunk.
            old_left = int(match.group(2)) if match.group(2) is not None else 1
            new_left = int(match.group(4)) if match.group(4) is not None else 1
            i += 1
            while i < len(lines) and (old_left > 0 or new_left > 0):
                body = lines[i]
                tag, text = (body[:1], body[1:]) if body else (" ", "")  # stripped empty context line
                if tag == "\\":  # "\ No newline at end of file"
                    i += 1
                    continue
                if tag not in (" ", "-", "+"):
                    break
                if tag in " -":
                    hunk.old.append(text)
                    old_left -= 1
                if tag in " +":
                    hunk.new.append(text)
                    new_left -= 1
                i += 1
            if old_left > 0 or new_left > 0:
                raise PatchFailed(f"patch {patch_name}: hunk #{hunk.number} of {current.path} "
                                  f"(@@ {hunk.header} @@) ends early",
                                  "the patch file is truncated or was edited by hand")
            continue
        i += 1
    if not files or not any(f.hunks for f in files):
        raise PatchFailed(f"patch {patch_name}: no hunks found", "is it a unified diff?")
    return files


def _locate(lines: list[str], hunk: Hunk, after: int) -> int | None:
    """Index where hunk.old matches, nearest to its recorded line, not before `after`."""
    want = hunk.old
    guess = max(hunk.old_start - 1, after)
    for delta in range(FUZZ_LINES + 1):
        for start in (guess + delta, guess - delta) if delta else (guess,):
            if start < after or start + len(want) > len(lines):
                continue
            if lines[start:start + len(want)] == want:
                return start
    return None


def _first_difference(lines: list[str], hunk: Hunk) -> str:
    start = max(hunk.old_start - 1, 0)
    for offset, expected in enumerate(hunk.old):
        index = start + offset
        found = lines[index] if index < len(lines) else None
        if found != expected:
            shown = "end of file" if found is None else repr(found)
            return f"line {index + 1}: expected {expected!r}, found {shown}"
    return "its context appears nowhere near the recorded position"


def apply_patches(tree: Path, patches: list[Path], strip: int = 1) -> list[str]:
    """Apply `patches` in order to `tree`. Returns the files changed. All or nothing."""
    contents: dict[Path, list[str]] = {}
    endings: dict[Path, str] = {}
    for patch in patches:
        for file_patch in parse_patch(patch.read_text(), patch.name, strip):
            target = tree / file_patch.path
            if target not in contents:
                if not target.is_file():
                    raise PatchFailed(f"patch {patch.name}: file {file_patch.path} does not exist in the source",
                                      "the source layout changed; update the patch for this version")
                text = target.read_text()
                endings[target] = "\n" if text.endswith("\n") else ""
                contents[target] = text.splitlines()
            lines = contents[target]
            position = 0
            for hunk in file_patch.hunks:
                at = _locate(lines, hunk, position)
                if at is None:
                    raise PatchFailed(
                        f"patch {patch.name}: hunk #{hunk.number} (@@ {hunk.header} @@) does not apply to "
                        f"{file_patch.path}: {_first_difference(lines, hunk)}",
                        "the upstream file changed; update the patch for this version")
                lines[at:at + len(hunk.old)] = hunk.new
                position = at + len(hunk.new)
    for target, lines in contents.items():
        target.write_text("\n".join(lines) + endings[target])
    return sorted(str(p.relative_to(tree)) for p in contents)
