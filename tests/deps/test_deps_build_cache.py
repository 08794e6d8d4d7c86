"""The build cache: an unchanged rebuild does nothing; a changed input is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deps_helpers import make_tarball, sha256_of, write_recipe, project  # noqa: F401 - fixture

from elkbuild.executor import LocalExecutor
from elkbuild.deps import DepsRunner, build_cache
from elkbuild.deps.recipes import load_recipes
from elkbuild.errors import BuildError
from elkbuild.build.toolchains import get_toolchain

RECIPE = """\
name: mini
version: '1.0'
toolchains: [debian-arm64]
sources:
  - {{id: main, url: '{url}', sha256: '{sha}'}}
patches: [{patches}]
build: {{system: copy}}
install:
  - {{from: source, glob: "include/*.h", to: include}}
outputs: [include/mini.h]
"""


def no_executor():
    raise AssertionError("an up-to-date dependency must not start an executor (container)")


class Setup:
    def __init__(self, project, tmp_path: Path) -> None:
        self.project = project
        self.folder = tmp_path / "recipes-home" / "recipes"
        self.tarball = make_tarball(tmp_path / "up" / "mini-1.0.tar.gz",
                                    {"include/mini.h": "#define MINI 1\n"}, "mini-1.0")
        self.patch = self.folder.parent / "patches" / "mini" / "value.patch"
        self.patch.parent.mkdir(parents=True)
        self.patch.write_text("--- a/include/mini.h\n+++ b/include/mini.h\n@@ -1 +1 @@\n"
                              "-#define MINI 1\n+#define MINI 2\n")
        self.write()

    def write(self, extra: str = "") -> None:
        write_recipe(self.folder, "mini", RECIPE.format(url=self.tarball.as_uri(), sha=sha256_of(self.tarball),
                                                       patches="mini/value.patch") + extra)

    def runner(self, toolchain=None, **kw) -> DepsRunner:
        return DepsRunner(self.project, toolchain or get_toolchain("debian-arm64", self.project),
                          recipes=load_recipes([self.folder]), **kw, fetch_executor=LocalExecutor())


@pytest.fixture
def setup(project, tmp_path: Path) -> Setup:
    return Setup(project, tmp_path)


def test_build_then_noop_then_named_changes(setup: Setup):
    (first,) = setup.runner(make_executor=no_executor).build()
    assert first.status == "built" and first.changed == ["no staged prefix yet"]
    prefix = setup.project.build_dir / "deps" / "debian-arm64" / "mini-1.0"
    assert first.prefix == prefix
    assert (prefix / "include" / "mini.h").read_text() == "#define MINI 2\n"
    meta = json.loads((prefix / "elkbuild-dep.json").read_text())
    assert meta["sources"][0]["sha256"] == sha256_of(setup.tarball)
    assert meta["toolchain"] == "debian-arm64" and meta["abi"]["glibc"] == "2.31"
    assert meta["patches"] == ["mini/value.patch"]

    (again,) = setup.runner(make_executor=no_executor).build()
    assert again.status == "up to date" and again.changed == []

    setup.patch.write_text(setup.patch.read_text().replace("MINI 2", "MINI 3"))
    (patched,) = setup.runner(make_executor=no_executor).build()
    assert patched.status == "built" and patched.changed == ["patch mini/value.patch"]
    assert (prefix / "include" / "mini.h").read_text() == "#define MINI 3\n"

    setup.write(extra="description: now documented\n")
    (edited,) = setup.runner(make_executor=no_executor).build()
    assert edited.changed == ["recipe"]

    native = get_toolchain("native", setup.project)
    assert setup.runner(make_executor=no_executor).status(setup.runner().recipes()[0])[0]
    # Same prefix path under another toolchain is another prefix; the identity is an input.
    assert build_cache.changed({"toolchain": get_toolchain("debian-arm64").identity()},
                               {"toolchain": native.identity()}) == ["toolchain"]


def test_source_change_is_named(setup: Setup):
    setup.runner(make_executor=no_executor).build()
    make_tarball(setup.tarball, {"include/mini.h": "#define MINI 1\n/* v1.0.1 */\n"}, "mini-1.0")
    setup.write()
    (result,) = setup.runner(make_executor=no_executor).build()
    assert result.changed == ["recipe", "source main"]


def test_failed_build_keeps_the_previous_prefix(setup: Setup):
    setup.runner(make_executor=no_executor).build()
    prefix = setup.project.build_dir / "deps" / "debian-arm64" / "mini-1.0"
    before = (prefix / "elkbuild-dep.json").read_text()
    setup.write(extra="")
    text = (setup.folder / "mini.yaml").read_text().replace("outputs: [include/mini.h]",
                                                             "outputs: [include/mini.h, lib/libmini.so]")
    (setup.folder / "mini.yaml").write_text(text)
    with pytest.raises(BuildError) as info:
        setup.runner(make_executor=no_executor).build()
    assert "outputs missing from the staged prefix: lib/libmini.so" in info.value.one_line()
    assert (prefix / "elkbuild-dep.json").read_text() == before
    leftovers = [p.name for p in prefix.parent.iterdir() if p.name.startswith((".mini-1.0.new", ".mini-1.0.old"))]
    assert leftovers == []


def test_offline_noop_needs_nothing(setup: Setup):
    setup.runner(make_executor=no_executor).build()
    setup.tarball.unlink()
    (result,) = setup.runner(make_executor=no_executor, offline=True).build()
    assert result.status == "up to date"
