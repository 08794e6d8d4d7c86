"""fetch-sources prefetches a recipe's FetchContent dependencies too; --offline then needs nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from deps_helpers import make_tarball, project, sha256_of, write_recipe  # noqa: F401 - fixture

from elkbuild.executor import LocalExecutor
from elkbuild.deps import DepsRunner
from elkbuild.deps.recipes import load_recipes
from elkbuild.deps.source_cache import MissingSources
from elkbuild.build.toolchains import get_toolchain


def make_upstream(tmp_path: Path) -> tuple[Path, Path]:
    dep = make_tarball(tmp_path / "up" / "dep-0.3.tar.gz", {"include/dep.h": "#define DEP 3\n"}, "dep-0.3")
    main = make_tarball(tmp_path / "up" / "app-1.0.tar.gz", {
        "include/app.h": "#include <dep.h>\n",
        "cmake/modules/dep.cmake": ("OverridableFetchContent_Declare(\n  dep\n"
                                    f"  URL {dep.as_uri()}\n  URL_HASH SHA256={sha256_of(dep)}\n)\n"),
    }, "app-1.0")
    return main, dep


def test_prefetch_then_offline_build(project, tmp_path: Path):
    main, dep = make_upstream(tmp_path)
    folder = tmp_path / "recipes"
    write_recipe(folder, "app", f"""\
name: app
version: '1.0'
toolchains: [debian-arm64]
sources: [{{id: app, url: '{main.as_uri()}', sha256: '{sha256_of(main)}'}}]
fetchcontent: {{modules: cmake/modules, contents: [dep]}}
build: {{system: copy}}
install:
  - {{from: source, glob: "include/*.h", to: include}}
  - {{from: "fetch:dep", glob: "include/*.h", to: include}}
outputs: [include/app.h, include/dep.h]
""")
    toolchain = get_toolchain("debian-arm64", project)

    offline = DepsRunner(project, toolchain, offline=True, recipes=load_recipes([folder]), fetch_executor=LocalExecutor())
    with pytest.raises(MissingSources) as info:
        offline.build()
    assert any(f"app-1.0: app {main.as_uri()}" in p for p in info.value.problems)

    report = DepsRunner(project, toolchain, recipes=load_recipes([folder]), fetch_executor=LocalExecutor()).fetch()
    assert report.fetched == ["app-1.0: app", "app-1.0: fetch-dep"]

    main.unlink()
    dep.unlink()  # from here on, only the cache has them
    (result,) = DepsRunner(project, toolchain, offline=True, recipes=load_recipes([folder]), fetch_executor=LocalExecutor()).build()
    assert result.status == "built"
    assert (result.prefix / "include" / "dep.h").read_text() == "#define DEP 3\n"
