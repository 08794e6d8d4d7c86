"""Loading the configuration at 1k, 10k and 40k keys, against PyYAML's own parse of
the same file side by side: elkbuild's layering and validation must stay linear.

Prints, per size, the median load time, PyYAML's parse time, their ratio, and the
time per key relative to the smallest size (1.0 everywhere means linear).

    .venv/bin/python bench/config_load.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from elkbuild.config import load_config  # noqa: E402
from timing import median_seconds  # noqa: E402

FIELDS_PER_BOARD = 10


def project_file(folder: Path, keys: int) -> Path:
    """A valid project file with about `keys` leaf keys: boards of ten fields each."""
    lines = ["boards:"]
    for number in range(keys // FIELDS_PER_BOARD):
        lines += [f"  pi{number}:", f"    host: pi{number}.local", "    port: 22", "    user: mind",
                  '    os_version: "1.x"', "    auth: key", "    plugin_dir: /home/mind/plugins",
                  "    config_dir: /home/mind/config_files", "    release_root: /udata/elkbuild",
                  "    keep_releases: 5", "    command_timeout: 60"]
    path = folder / "elkbuild.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = {"ELKBUILD_USER_CONFIG": "/nonexistent/elkbuild-bench.yaml"}
    first_per_key = None
    print(f"{'keys':>7} {'load_config':>12} {'yaml parse':>11} {'ratio':>6} {'per key vs 1k':>14}")
    for keys in (1_000, 10_000, 40_000):
        with tempfile.TemporaryDirectory() as folder:
            path = project_file(Path(folder), keys)
            text = path.read_text()
            loaded = median_seconds(lambda: load_config(Path(folder), env=env), args.repeat)
            parsed = median_seconds(lambda: yaml.safe_load(text), args.repeat)
        per_key = loaded / keys
        first_per_key = first_per_key or per_key
        print(f"{keys:>7} {loaded:>11.3f}s {parsed:>10.3f}s {loaded / parsed:>6.2f} "
              f"{per_key / first_per_key:>14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
