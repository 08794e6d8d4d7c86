"""The source cache: verified, atomic downloads; pin on first use; honest offline mode."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import yaml
from deps_helpers import make_tarball, sha256_of

from elkbuild.deps.lockfile import LOCK_FILE_NAME, PinFile
from elkbuild.deps.recipes import Recipe, parse_recipe
from elkbuild.deps.source_cache import (ChecksumMismatch, MissingSources, SourceCache,
                                        UnpinnedSource)
from elkbuild.executor import LocalExecutor


def recipe_for(tmp_path: Path, url: str, sha: str) -> Recipe:
    text = (f"name: lib\nversion: '1.0'\ntoolchains: ['*']\n"
            f"sources: [{{id: main, url: '{url}', sha256: '{sha}'}}]\n"
            "build: {system: copy}\noutputs: [include/lib.h]\n")
    return parse_recipe(tmp_path / "recipes" / "lib.yaml", text)


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    return make_tarball(tmp_path / "upstream" / "lib-1.0.tar.gz", {"include/lib.h": "int lib(void);\n"}, "lib-1.0")


def cache_for(tmp_path: Path, **kw) -> SourceCache:
    return SourceCache(tmp_path / "cache", PinFile(tmp_path / "proj" / LOCK_FILE_NAME), **kw)


def test_pinned_download_is_verified_and_cached(tmp_path: Path, upstream: Path):
    recipe = recipe_for(tmp_path, upstream.as_uri(), sha256_of(upstream))
    cache = cache_for(tmp_path)
    got = cache.fetch(recipe, recipe.sources[0], LocalExecutor())
    assert got == tmp_path / "cache" / "sources" / "by-sha256" / sha256_of(upstream) / "lib-1.0.tar.gz"
    assert got.read_bytes() == upstream.read_bytes()
    upstream.unlink()  # a second fetch must not need the network (or the file)
    assert cache.fetch(recipe, recipe.sources[0], LocalExecutor()) == got


def test_wrong_digest_stores_nothing(tmp_path: Path, upstream: Path):
    recipe = recipe_for(tmp_path, upstream.as_uri(), "0" * 64)
    with pytest.raises(ChecksumMismatch) as info:
        cache_for(tmp_path).fetch(recipe, recipe.sources[0], LocalExecutor())
    assert sha256_of(upstream) in info.value.one_line() and "0" * 64 in info.value.one_line()
    stored = [p for p in (tmp_path / "cache" / "sources").rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert stored == []


def test_unknown_digest_is_refused_then_pinned_on_first_use(tmp_path: Path, upstream: Path):
    recipe = recipe_for(tmp_path, upstream.as_uri(), "unknown")
    with pytest.raises(UnpinnedSource) as info:
        cache_for(tmp_path).fetch(recipe, recipe.sources[0], LocalExecutor())
    assert "--allow-unpinned" in info.value.one_line()
    assert not (tmp_path / "proj" / LOCK_FILE_NAME).exists()

    got = cache_for(tmp_path, allow_unpinned=True).fetch(recipe, recipe.sources[0], LocalExecutor())
    lock = yaml.safe_load((tmp_path / "proj" / LOCK_FILE_NAME).read_text())
    assert lock["urls"][upstream.as_uri()]["sha256"] == sha256_of(upstream) == sha256_of(got)

    # From now on the pin is enforced: a changed upstream file is caught.
    make_tarball(upstream, {"include/lib.h": "int lib(int);\n"}, "lib-1.0")
    got.unlink()
    with pytest.raises(ChecksumMismatch):
        cache_for(tmp_path).fetch(recipe, recipe.sources[0], LocalExecutor())


def test_offline_lists_what_is_missing_and_where_to_put_it(tmp_path: Path, upstream: Path):
    sha = sha256_of(upstream)
    recipe = recipe_for(tmp_path, "https://downloads.example.invalid/lib-1.0.tar.gz", sha)
    cache = cache_for(tmp_path, offline=True)
    with pytest.raises(MissingSources) as info:
        cache.fetch(recipe, recipe.sources[0], LocalExecutor())
    (problem,) = info.value.problems
    incoming = tmp_path / "cache" / "sources" / "incoming" / "lib-1.0.tar.gz"
    assert "lib-1.0: main https://downloads.example.invalid/lib-1.0.tar.gz" in problem
    assert f"put it at {incoming} (sha256 {sha})" in problem

    # Carried in by hand: adopted after its digest is checked, without the network.
    incoming.parent.mkdir(parents=True, exist_ok=True)
    incoming.write_bytes(upstream.read_bytes())
    got = cache.fetch(recipe, recipe.sources[0], LocalExecutor())
    assert sha256_of(got) == sha and not incoming.exists()


def test_hand_carried_file_with_wrong_digest_is_refused(tmp_path: Path, upstream: Path):
    recipe = recipe_for(tmp_path, "https://downloads.example.invalid/lib-1.0.tar.gz", "1" * 64)
    incoming = tmp_path / "cache" / "sources" / "incoming" / "lib-1.0.tar.gz"
    incoming.parent.mkdir(parents=True)
    incoming.write_bytes(upstream.read_bytes())
    with pytest.raises(ChecksumMismatch) as info:
        cache_for(tmp_path, offline=True).fetch(recipe, recipe.sources[0], LocalExecutor())
    assert f"{incoming}: sha256 is {sha256_of(upstream)}, expected {'1' * 64}" in info.value.one_line()
    assert "not the pinned one" in info.value.one_line()
    assert incoming.exists()  # left where the user put it


def test_offline_unpinned_needs_both_file_and_consent(tmp_path: Path, upstream: Path):
    recipe = recipe_for(tmp_path, "https://downloads.example.invalid/lib-1.0.tar.gz", "unknown")
    with pytest.raises(MissingSources, match="sources missing"):
        cache_for(tmp_path, offline=True).fetch(recipe, recipe.sources[0], LocalExecutor())
    incoming = tmp_path / "cache" / "sources" / "incoming" / "lib-1.0.tar.gz"
    incoming.parent.mkdir(parents=True)
    incoming.write_bytes(upstream.read_bytes())
    got = cache_for(tmp_path, offline=True, allow_unpinned=True).fetch(recipe, recipe.sources[0], LocalExecutor())
    assert PinFile(tmp_path / "proj" / LOCK_FILE_NAME).url_sha256(recipe.sources[0].url) == sha256_of(got)


def test_concurrent_fetches_share_one_verified_file(tmp_path: Path, upstream: Path):
    recipe = recipe_for(tmp_path, upstream.as_uri(), sha256_of(upstream))
    results: list[Path] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(cache_for(tmp_path).fetch(recipe, recipe.sources[0], LocalExecutor()))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    folder = results[0].parent
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) == ["lib-1.0.tar.gz"]


def test_a_deb_the_recipe_pins_by_sha256_refuses_another_file_of_the_suite(tmp_path: Path):
    # The lock file says what the suite served (sid moved on); the recipe names one file.
    pins = PinFile(tmp_path / LOCK_FILE_NAME)
    pins.put("debs", "sid/arm64/libfoo-dev",
             {"version": "2.0-1", "arch": "arm64", "filename": "pool/main/f/foo/libfoo-dev_2.0-1_arm64.deb",
              "sha256": "1" * 64, "depends": ""})
    recipe = parse_recipe(tmp_path / "recipes" / "foo.yaml", yaml.safe_dump({
        "name": "foo", "version": "1", "toolchains": ["debian-arm64"], "build": {"system": "copy"},
        "sources": [{"id": "headers", "deb": "libfoo-dev", "suite": "sid", "stage": False,
                     "sha256": "2" * 64}],
        "outputs": ["include/foo.h"]}))
    cache = SourceCache(tmp_path / "cache", pins)
    with pytest.raises(ChecksumMismatch, match=r"sid's libfoo-dev is 2\.0-1 .*the recipe pins sha256 2{64}"):
        cache.fetch(recipe, recipe.sources[0], LocalExecutor())
    assert not (tmp_path / "cache" / "sources" / "debs").exists()
