"""Write the example models (no downloads): python scripts/make_example_models.py [DIR]."""

from __future__ import annotations

import sys
from pathlib import Path

from elkbuild.plugin.example_models import write_examples

if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("example-models")
    for name, path in write_examples(target).items():
        print(f"{name}: {path} ({path.stat().st_size} bytes)")
