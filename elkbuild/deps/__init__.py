"""Dependencies (TensorFlow Lite, ONNX Runtime, ...) as data-driven recipes.

recipes.py (load + validate) -> source_cache.py (+ debian.py, lockfile.py) ->
archives.py / patching.py / fetchcontent.py -> cmake_build.py -> staging.py,
with build_cache.py keying every staged prefix; runner.py ties them together.
"""

from __future__ import annotations

from elkbuild.deps.runner import DepResult, DepsRunner

__all__ = ["DepResult", "DepsRunner"]
