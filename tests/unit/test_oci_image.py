"""Base image reading (index → platform), append semantics, and the digest cache, on a real OCI layout."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from oci_images import media_types
from oci_images.digest_cache import CachedLayer, DigestCache
from oci_images.digests import sha256_digest
from oci_images.image import NewLayer, Platform, append_layers, canonical_json, load_base, scratch_base
from oci_images.oci_layout import OciLayoutStore
from serving_core.errors import InvalidInputError, NotFoundError, UnsupportedError

LAYER = CachedLayer("sha256:" + "1" * 64, "sha256:" + "2" * 64, 1234, media_types.OCI_LAYER_TAR)


def put_blob(store: OciLayoutStore, body: bytes) -> dict[str, object]:
    digest = sha256_digest(body)
    store.write_blob([body], lambda: digest)
    return {"digest": digest, "size": len(body)}


def put_image(
    store: OciLayoutStore,
    arch: str,
    *,
    layer_type: str = media_types.DOCKER_LAYER_GZIP,
    config_type: str = media_types.DOCKER_CONFIG,
) -> tuple[bytes, str]:
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/bin", "A=1"], "Labels": None},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "d" * 64]},
        "history": [{"created_by": "base"}],
    }
    config_descriptor = {"mediaType": config_type, **put_blob(store, canonical_json(config))}
    layer = {"mediaType": layer_type, **put_blob(store, f"layer-{arch}".encode())}
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_types.DOCKER_MANIFEST,
        "config": config_descriptor,
        "layers": [layer],
    }
    body = canonical_json(manifest)
    return body, store.write_manifest(body, media_types.DOCKER_MANIFEST, f"single-{arch}")


@pytest.fixture
def store(tmp_path: Path) -> OciLayoutStore:
    return OciLayoutStore(tmp_path / "layout")


def test_index_resolves_to_the_asked_platform(store: OciLayoutStore) -> None:
    amd_body, amd = put_image(store, "amd64")
    arm_body, arm = put_image(store, "arm64")
    index = {
        "schemaVersion": 2,
        "mediaType": media_types.OCI_INDEX,
        "manifests": [
            {
                "mediaType": media_types.DOCKER_MANIFEST,
                "digest": amd,
                "size": len(amd_body),
                "platform": {"os": "linux", "architecture": "amd64"},
            },
            {
                "mediaType": media_types.DOCKER_MANIFEST,
                "digest": arm,
                "size": len(arm_body),
                "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
            },
        ],
    }
    store.write_manifest(canonical_json(index), media_types.OCI_INDEX, "multi")

    base = load_base(store, "multi", "base:multi", Platform.parse("linux/arm64"))
    assert base.digest == arm
    assert base.config["architecture"] == "arm64"
    assert base.layers == [
        {"mediaType": media_types.OCI_LAYER_GZIP, "digest": sha256_digest(b"layer-arm64"), "size": 11}
    ]
    with pytest.raises(
        NotFoundError, match="has no manifest for platform linux/s390x; it has linux/amd64, linux/arm64/v8"
    ):
        load_base(store, "multi", "base:multi", Platform.parse("linux/s390x"))
    with pytest.raises(InvalidInputError, match="base image b is linux/amd64, but platform linux/arm64 was asked for"):
        load_base(store, "single-amd64", "b", Platform.parse("linux/arm64"))
    with pytest.raises(NotFoundError, match="base image b:none not found"):
        load_base(store, "none", "b:none", Platform.parse("linux/amd64"))


@pytest.mark.parametrize(
    ("layer_type", "config_type", "message"),
    [
        (
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            media_types.DOCKER_CONFIG,
            "has a layer of media type",
        ),
        (media_types.OCI_LAYER_TAR, "application/vnd.unknown.config.v1+json", "has config media type"),
    ],
)
def test_unsupported_media_types(store: OciLayoutStore, layer_type: str, config_type: str, message: str) -> None:
    put_image(store, "amd64", layer_type=layer_type, config_type=config_type)
    with pytest.raises(UnsupportedError, match=message):
        load_base(store, "single-amd64", "b", Platform.parse("linux/amd64"))


def test_append_keeps_the_base_and_adds_layer_history_labels_env(store: OciLayoutStore) -> None:
    _, digest = put_image(store, "amd64")
    base = load_base(store, "single-amd64", "base:1", Platform.parse("linux/amd64"))
    second = CachedLayer("sha256:" + "3" * 64, "sha256:" + "4" * 64, 99, media_types.OCI_LAYER_TAR)
    image = append_layers(
        base,
        [NewLayer(LAYER, "add model"), NewLayer(second, "add shard", {"ai.creativeflow.layer.file": "/models/s"})],
        labels={"l": "v"},
        env={"A": "2", "MODEL": "/models"},
        cmd=None,
        created="1970-01-01T00:00:00Z",
    )
    assert json.loads(image.config) == {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/bin", "A=2", "MODEL=/models"], "Labels": {"l": "v"}},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "d" * 64, LAYER.diff_id, second.diff_id]},
        "history": [
            {"created_by": "base"},
            {"created": "1970-01-01T00:00:00Z", "created_by": "add model"},
            {"created": "1970-01-01T00:00:00Z", "created_by": "add shard"},
        ],
    }
    assert json.loads(image.manifest) == {
        "schemaVersion": 2,
        "mediaType": media_types.OCI_MANIFEST,
        "config": {
            "mediaType": media_types.OCI_CONFIG,
            "digest": sha256_digest(image.config),
            "size": len(image.config),
        },
        "layers": [
            *base.layers,
            {"mediaType": LAYER.media_type, "digest": LAYER.digest, "size": LAYER.size},
            {
                "mediaType": second.media_type,
                "digest": second.digest,
                "size": 99,
                "annotations": {"ai.creativeflow.layer.file": "/models/s"},
            },
        ],
        "annotations": {
            "org.opencontainers.image.base.digest": digest,
            "org.opencontainers.image.base.name": "base:1",
            "org.opencontainers.image.created": "1970-01-01T00:00:00Z",
        },
    }
    assert image.manifest_digest == sha256_digest(image.manifest)


def test_scratch_base_with_cmd() -> None:
    image = append_layers(
        scratch_base(Platform.parse("linux/arm64/v8")),
        [NewLayer(LAYER, "x")],
        labels={},
        env={},
        cmd=["sh"],
        created="1970-01-01T00:00:00Z",
    )
    config = json.loads(image.config)
    assert (config["architecture"], config["variant"], config["config"]) == (
        "arm64",
        "v8",
        {"Cmd": ["sh"], "Labels": {}},
    )
    assert "annotations" in json.loads(image.manifest)


def test_layout_write_is_atomic_and_tags_move(store: OciLayoutStore) -> None:
    first = store.write_manifest(b'{"a":1}', media_types.OCI_MANIFEST, "v1")
    second = store.write_manifest(b'{"a":2}', media_types.OCI_MANIFEST, "v1")
    index = json.loads((store.path / "index.json").read_text())
    assert [entry["digest"] for entry in index["manifests"]] == [second]
    assert store.has_blob(first)
    assert not list((store.path / "blobs" / "sha256").glob(".upload-*"))
    (store.path / "../not-a-layout").resolve().mkdir()
    ((store.path / "../not-a-layout").resolve() / "file").write_text("x")
    with pytest.raises(InvalidInputError, match="non-empty directory but not an OCI image layout"):
        OciLayoutStore((store.path / "../not-a-layout").resolve()).check_writable()


def test_a_new_layout_takes_blobs_from_several_threads_at_once(tmp_path: Path) -> None:
    bodies = [f"layer {index}".encode() for index in range(8)]
    for attempt in range(20):  # the race between creating the layout and checking it is short
        store = OciLayoutStore(tmp_path / f"fresh-{attempt}")
        start = threading.Barrier(len(bodies))

        def write(body: bytes, store: OciLayoutStore = store, start: threading.Barrier = start) -> None:
            start.wait()  # every thread finds the directory missing, as concurrent layer uploads do
            put_blob(store, body)

        with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
            list(pool.map(write, bodies))
        assert all(store.has_blob(sha256_digest(body)) for body in bodies)
        assert json.loads((store.path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}


def test_digest_cache_round_trip_and_bad_files(tmp_path: Path) -> None:
    cache = DigestCache(tmp_path / "cache")
    assert cache.get("k") is None
    cache.put("k", LAYER)
    assert DigestCache(tmp_path / "cache").get("k") == LAYER
    cache.path.write_text("not json")
    assert DigestCache(tmp_path / "cache").get("k") is None
    cache.put("k2", LAYER)
    assert DigestCache(tmp_path / "cache").get("k2") == LAYER


def test_blob_locations_are_remembered_newest_first(tmp_path: Path) -> None:
    cache = DigestCache(tmp_path / "cache")
    assert cache.locations(LAYER.digest) == []
    cache.remember([LAYER.digest], "r:5000/models/a")
    cache.remember([LAYER.digest], "r:5000/models/b")
    cache.remember([LAYER.digest], "r:5000/models/a")
    assert DigestCache(tmp_path / "cache").locations(LAYER.digest) == ["r:5000/models/a", "r:5000/models/b"]
    cache.locations_path.write_text("[1, 2]")
    assert DigestCache(tmp_path / "cache").locations(LAYER.digest) == []
