"""The project's pin file: digests and versions elkbuild learned on first use.

Two kinds of input are not pinned by a recipe alone:
- upstream archives whose sha256 nobody could verify when the recipe was written
  (the recipe says `sha256: unknown`). elkbuild refuses to use them until they are
  pinned; `--allow-unpinned` downloads once, records the digest here and says so
  loudly. From then on every download and every offline build is checked against
  this file, so a changed upstream archive is caught, not silently used;
- Debian packages from moving suites (sid): the version, file name and sha256
  that apt's signed index gave at the first fetch. Builds reuse exactly those
  until `fetch-sources --update` resolves them again.

The file lives beside elkbuild.yaml and belongs in version control.
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from pathlib import Path
from typing import Any, ContextManager

import yaml

from elkbuild.errors import ConfigError, MISSING
from elkbuild.locks import locked

LOCK_FILE_NAME = "elkbuild-deps.lock.yaml"

_HEADER = ("# Pins written by elkbuild on first use (elkbuild.deps.lockfile).\n"
           "# Keep this file in version control; check first-use digests against upstream.\n")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class PinFile:
    """Read once, written atomically (temp + rename) under an flock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, dict[str, Any]] = {"urls": {}, "git": {}, "debs": {}, "deb-src": {}, "wheels": {}}
        if path.is_file():
            try:
                loaded = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as error:
                raise ConfigError(path, "", MISSING, f"is not valid YAML: {error}",
                                  "fix it or delete it to pin again on the next fetch") from None
            if not isinstance(loaded, dict):
                raise ConfigError(path, "", loaded, "must be a mapping",
                                  "delete it to pin again on the next fetch")
            for section in self.data:
                value = loaded.get(section) or {}
                if not isinstance(value, dict):
                    raise ConfigError(path, section, value, "must be a mapping",
                                      "delete the section to pin again on the next fetch")
                self.data[section] = value

    def get(self, section: str, key: str) -> dict[str, Any] | None:
        entry = self.data[section].get(key)
        return entry if isinstance(entry, dict) else None

    def url_sha256(self, url: str) -> str | None:
        entry = self.get("urls", url)
        return str(entry["sha256"]) if entry and "sha256" in entry else None

    def put(self, section: str, key: str, entry: dict[str, Any]) -> None:
        """Record one pin and write the file at once (a crash never loses a verified pin)."""
        with self._locked():
            # Merge with what another process may have written meanwhile.
            fresh = PinFile(self.path)
            fresh.data[section][key] = entry
            self.data = fresh.data
            self._write()

    def _locked(self) -> ContextManager[None]:
        return locked(self.path.with_name(self.path.name + ".lock"))

    def _write(self) -> None:
        body = {k: v for k, v in self.data.items() if v}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(fd, "w") as handle:
            handle.write(_HEADER)
            yaml.safe_dump(body, handle, sort_keys=True, default_flow_style=False)
        os.replace(tmp, self.path)
