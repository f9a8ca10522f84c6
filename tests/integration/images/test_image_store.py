"""The tests' image store lets no prune run while a build does (tests/support/containers.py).

The background builds and a test's own build share one store, and each build prunes when it ends. podman
counts the layer a running build has just committed as dangling, so a prune from another build removed it
and the running build failed ("layer not known"; seen in CI). These tests hold the build lock the way
``ContainerTools.build`` does and check what a prune does meanwhile, on a store of their own.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import CONTAINER_TOOLS
from tests.support.containers import ContainerTools
from tests.support.tools import require_tools


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ContainerTools:
    """A store of the test's own, so that its prunes touch no other test's images.

    vfs: the overlay driver leaves its directory mounted, which pytest then cannot remove with the test's
    temporary directory.
    """
    require_tools(*CONTAINER_TOOLS)
    monkeypatch.setenv("AISERVING_CONTAINER_STORAGE_DRIVER", "vfs")
    return ContainerTools(tmp_path / "containers")


def dangling_image(tools: ContainerTools) -> str:
    """Commit an empty image without a name: what a build's newest layer is until the build goes on."""
    container = tools.run("buildah", "from", "scratch").stdout.strip()
    return tools.run("buildah", "commit", "--rm", "--quiet", container).stdout.strip()


def test_a_prune_that_need_not_wait_is_skipped_while_a_build_runs(store: ContainerTools) -> None:
    image = dangling_image(store)
    with store.building():
        assert store.prune(wait=False) is False
        assert store.image_id(image) == image
    assert store.prune(wait=False) is True
    assert store.image_id(image) is None


def test_a_prune_that_waits_runs_once_the_build_ends(store: ContainerTools) -> None:
    image = dangling_image(store)
    with ThreadPoolExecutor(max_workers=1) as pool:
        with store.building():
            pruned = pool.submit(store.prune)
            time.sleep(1.0)
            assert not pruned.done()
            assert store.image_id(image) == image
        assert pruned.result(timeout=120) is True
    assert store.image_id(image) is None


def test_builds_share_the_lock(store: ContainerTools) -> None:
    def another_build() -> bool:
        with store.building():
            return True

    with store.building(), ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(another_build).result(timeout=10) is True
