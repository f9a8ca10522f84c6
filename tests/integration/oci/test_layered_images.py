"""Layered modelcars in a real registry: versions and models share layers, only new bytes travel."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from aiserving.local.registry import LocalRegistry
from oci_images import build_image
from oci_images.digests import DigestingStream, sha256_digest
from oci_images.oci_layout import OciLayoutStore
from oci_images.push import CONCURRENCY, READ_AHEAD
from oci_images.registry import RegistryClient
from serving_core.errors import ConflictError
from tests.conftest import REPO_ROOT
from tests.integration.oci.test_build_image import kserve_fetch, run_cli
from tests.support.oci import make_package, skopeo, skopeo_json, snapshot
from tests.support.tools import require_tools

THRESHOLD = "100K"
SHARD = 150_000


@pytest.fixture(autouse=True)
def _tools() -> None:
    require_tools("docker-registry", "skopeo")


def sharded_package(root: Path, shards: list[bytes], *, config: str = '{"v": 1}') -> Path:
    """make_package's tree plus weight shards (own layers at THRESHOLD) and a small config."""
    make_package(root, weights=shards[0])
    (root / "shards").mkdir()
    for index, data in enumerate(shards[1:], start=1):
        (root / "shards" / f"shard-{index}.bin").write_bytes(data)
    (root / "config.json").write_text(config)
    return root


def uploads_and_mounts(registry: LocalRegistry, mark: int, repository: str) -> tuple[set[str], set[str]]:
    """Blob digests committed by upload, and mounted, into ``repository`` since ``mark`` in the log."""
    seen = (registry.state_dir / "registry.log").read_bytes()[mark:].decode()
    path = re.escape(f"/v2/{repository}/blobs/uploads/")
    uploaded = set(re.findall(rf"PUT {path}\S*digest=(sha256:[0-9a-f]{{64}})", seen))
    mounted = {
        digest.replace("%3A", ":")
        for digest in re.findall(rf'POST {path}\?mount=(sha256%3A[0-9a-f]{{64}})\S* HTTP/1.1" 201', seen)
    }
    return uploaded, mounted


def log_mark(registry: LocalRegistry) -> int:
    return (registry.state_dir / "registry.log").stat().st_size


def test_a_new_version_uploads_only_its_changed_layers(
    registry: LocalRegistry, busybox_base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shards = [os.urandom(SHARD) for _ in range(4)]
    first = build_image(
        sharded_package(tmp_path / "v1", shards),
        f"{registry.host}/llm/chat:v1",
        base_image=busybox_base,
        insecure=True,
        layer_threshold=THRESHOLD,
    )
    assert [item.outcome for item in first.layers] == ["uploaded"] * 5
    assert [item.planned.description for item in first.layers] == [
        "/models/fraud/1/model.onnx",
        "/models/shards/shard-1.bin",
        "/models/shards/shard-2.bin",
        "/models/shards/shard-3.bin",
        "7 files, directories, symlinks",
    ]

    # version 2 is a fresh download (new inodes: the digest cache cannot help) with one shard fine-tuned
    changed = [*shards[:2], os.urandom(SHARD), shards[3]]
    second_package = sharded_package(tmp_path / "v2", changed, config='{"v": 2}')
    mark = log_mark(registry)
    second = build_image(
        second_package,
        f"{registry.host}/llm/chat:v2",
        base_image=busybox_base,
        insecure=True,
        layer_threshold=THRESHOLD,
    )
    uploaded, _ = uploads_and_mounts(registry, mark, "llm/chat")
    assert [item.outcome for item in second.layers] == ["present", "present", "uploaded", "present", "uploaded"]
    assert uploaded == {second.layers[2].layer.digest, second.layers[4].layer.digest, second.config_digest}
    # the changed shard was hashed to find it is new: it goes in one PUT the registry checks, not hashed again
    assert "PATCH /v2/llm/chat/blobs/uploads/" not in (registry.state_dir / "registry.log").read_bytes()[mark:].decode()
    assert [item.layer.digest for item in second.layers[:2]] == [item.layer.digest for item in first.layers[:2]]
    assert second.bytes_sent == second.layers[2].layer.size + second.layers[4].layer.size
    assert second.bytes_skipped == sum(first.layers[index].layer.size for index in (0, 1, 3))

    # KServe's storage initializer and an OCI layout copy see exactly the package
    fetched = kserve_fetch(
        f"oci://{second.pinned}", tmp_path / "fetched", monkeypatch, KSERVE_OCI_INSECURE_REGISTRY="true"
    )
    assert snapshot(fetched) == snapshot(second_package)
    layout = tmp_path / "pulled"
    for version in (first, second):
        copied = skopeo("copy", "--src-tls-verify=false", f"docker://{version.pinned}", f"oci:{layout}:x")
        assert copied.returncode == 0, copied.stderr
    assert snapshot(extract_layout(layout, "x", tmp_path / "from-layout")) == snapshot(second_package)


def extract_layout(layout: Path, tag: str, out: Path) -> Path:
    """Apply an OCI layout image's layers in order and return its /models."""
    index = json.loads((layout / "index.json").read_text())
    (entry,) = [
        item
        for item in index["manifests"]
        if item.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    ]
    manifest = json.loads((layout / "blobs" / "sha256" / entry["digest"].split(":")[1]).read_text())
    for layer in manifest["layers"]:
        with tarfile.open(layout / "blobs" / "sha256" / layer["digest"].split(":")[1]) as archive:
            archive.extractall(out, filter="data")
    return out / "models"


def test_another_model_mounts_the_shards_it_shares(registry: LocalRegistry, tmp_path: Path) -> None:
    shards = [os.urandom(SHARD) for _ in range(3)]
    base_model = build_image(
        sharded_package(tmp_path / "base", shards),
        f"{registry.host}/llm/base:v1",
        base_image="scratch",
        insecure=True,
        layer_threshold=THRESHOLD,
    )
    # a fine-tune in its own repository: new first shard, the other two frozen
    tuned = sharded_package(tmp_path / "tuned", [os.urandom(SHARD), *shards[1:]], config='{"tuned": true}')
    mark = log_mark(registry)
    result = run_cli(
        "build-image",
        str(tuned),
        "--image",
        f"{registry.host}/llm/tuned:v1",
        "--base-image",
        "scratch",
        "--insecure",
        "--layer-threshold",
        THRESHOLD,
        "--mount-from",
        "llm/base",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [(layer["outcome"], layer["source"]) for layer in document["layers"]] == [
        ("uploaded", None),
        ("mounted", f"{registry.host}/llm/base"),
        ("mounted", f"{registry.host}/llm/base"),
        ("uploaded", None),
    ]
    uploaded, mounted = uploads_and_mounts(registry, mark, "llm/tuned")
    shared = {layer["digest"] for layer in document["layers"][1:3]}
    assert mounted == shared == {item.layer.digest for item in base_model.layers[1:3]}
    assert not uploaded & shared
    assert document["bytes_skipped"] == sum(layer["size"] for layer in document["layers"][1:3])

    # the same files pushed to a third repository: the digest cache remembers where the blobs are
    mark = log_mark(registry)
    again = build_image(
        tuned, f"{registry.host}/llm/mirror:v1", base_image="scratch", insecure=True, layer_threshold=THRESHOLD
    )
    assert {item.outcome for item in again.layers} == {"mounted"}
    uploaded, mounted = uploads_and_mounts(registry, mark, "llm/mirror")
    assert uploaded == {again.config_digest}
    assert len(mounted) == 4


def test_dry_run_prints_the_plan_and_writes_nothing(registry: LocalRegistry, busybox_base: str, tmp_path: Path) -> None:
    shards = [os.urandom(SHARD) for _ in range(3)]
    build_image(
        sharded_package(tmp_path / "v1", shards),
        f"{registry.host}/llm/dry:v1",
        base_image=busybox_base,
        insecure=True,
        layer_threshold=THRESHOLD,
    )
    package = sharded_package(tmp_path / "v2", [*shards[:2], os.urandom(SHARD)], config='{"dry": 2}')
    mark = log_mark(registry)
    arguments = ["build-image", str(package), "--image", f"{registry.host}/llm/dry:v2", "--base-image", busybox_base]
    planned = run_cli(*arguments, "--insecure", "--layer-threshold", THRESHOLD, "--dry-run")
    assert planned.returncode == 0, planned.stderr
    lines = planned.stdout.splitlines()
    assert lines[0].split() == ["layer", "size", "MiB", "digest", "would", "be", "holds"]
    assert [line.split()[3:] for line in lines[1:5]] == [
        ["present", "/models/fraud/1/model.onnx"],
        ["present", "/models/shards/shard-1.bin"],
        ["would", "upload", "/models/shards/shard-2.bin"],
        ["would", "upload", "7", "files,", "directories,", "symlinks"],
    ]
    assert lines[5].split()[0] == "base"
    assert "present" in lines[5]
    assert re.search(r"would send 0\.\d MiB of 0\.\d MiB in model layers \(2 of 4 layers already there", planned.stdout)
    seen = (registry.state_dir / "registry.log").read_bytes()[mark:].decode()
    assert not re.findall(r'"(POST|PUT|PATCH|DELETE) ', seen)  # only GET and HEAD
    assert requests_tag_missing(registry, "llm/dry", "v2")

    would_be = lines[-1].removeprefix("image: ")
    pushed = run_cli(*arguments, "--insecure", "--layer-threshold", THRESHOLD)
    assert pushed.stdout.strip() == would_be  # the dry run knew the digest


def requests_tag_missing(registry: LocalRegistry, repository: str, tag: str) -> bool:
    listed = skopeo_json("list-tags", "--tls-verify=false", f"docker://{registry.host}/{repository}")
    return tag not in listed["Tags"]  # type: ignore[operator]


def test_single_layer_is_still_selectable_and_layouts_hold_the_exact_tree(tmp_path: Path) -> None:
    package = sharded_package(tmp_path / "pkg", [os.urandom(SHARD) for _ in range(2)])
    layout = tmp_path / "layout"
    single = build_image(package, f"oci-layout:{layout}:single", base_image="scratch", layers="single")
    layered = build_image(package, f"oci-layout:{layout}:layered", base_image="scratch", layer_threshold=THRESHOLD)
    assert [item.planned.kind for item in single.layers] == ["package"]
    assert [item.planned.kind for item in layered.layers] == ["file", "file", "small-files"]
    for tag in ("single", "layered"):
        assert snapshot(extract_layout(layout, tag, tmp_path / tag)) == snapshot(package)


def test_uploads_stream_under_a_digest_known_only_at_their_end(registry: LocalRegistry) -> None:
    client = RegistryClient(registry.host, insecure=True)
    data = os.urandom(3 << 20)
    stream = DigestingStream((data[start : start + (1 << 20)] for start in range(0, len(data), 1 << 20)), "none")
    mark = log_mark(registry)
    # sized (Content-Length, no chunked encoding): the digest exists only once the last chunk went out
    client.upload_blob("sized/blobs", stream, lambda: stream.digest, len(data))
    assert stream.digest == sha256_digest(data)
    assert b"".join(client.get_blob("sized/blobs", sha256_digest(data))) == data
    # a small blob goes out with the PUT that commits it
    small = b'{"architecture": "amd64"}'
    client.upload_blob("sized/blobs", [small], lambda: sha256_digest(small), len(small))
    assert b"".join(client.get_blob("sized/blobs", sha256_digest(small))) == small
    seen = (registry.state_dir / "registry.log").read_bytes()[mark:].decode()
    assert len(re.findall(r"PATCH /v2/sized/blobs/blobs/uploads/", seen)) == 1
    assert len(re.findall(r"PUT /v2/sized/blobs/blobs/uploads/\S*digest=sha256", seen)) == 2
    # fewer bytes than announced: refused before the registry waits for the rest, nothing stored
    with pytest.raises(ConflictError, match=r"announced as 2097152 bytes ended after 1048576"):
        client.upload_blob("sized/blobs", [data[: 1 << 20]], lambda: sha256_digest(data[: 1 << 20]), 2 << 20)
    assert not client.blob_exists("sized/blobs", sha256_digest(data[: 1 << 20]))


def test_a_blob_whose_digest_is_known_goes_in_one_put_that_the_store_checks(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    client = RegistryClient(registry.host, insecure=True)
    data = os.urandom(3 << 20)
    pieces = [data[start : start + (1 << 20)] for start in range(0, len(data), 1 << 20)]
    mark = log_mark(registry)
    client.upload_blob("known/blobs", iter(pieces), lambda: sha256_digest(data), len(data), digest_known=True)
    assert b"".join(client.get_blob("known/blobs", sha256_digest(data))) == data
    seen = (registry.state_dir / "registry.log").read_bytes()[mark:].decode()
    assert "PATCH /v2/known/blobs/blobs/uploads/" not in seen
    assert len(re.findall(r"PUT /v2/known/blobs/blobs/uploads/\S*digest=sha256", seen)) == 1

    # the source changed after it was hashed: the registry's own check refuses it, nothing is stored
    stale = sha256_digest(data[::-1])
    with pytest.raises(ConflictError, match=rf"refused blob {stale} for known/blobs: the bytes sent hash differently"):
        client.upload_blob("known/blobs", iter(pieces), lambda: stale, len(data), digest_known=True)
    assert not client.blob_exists("known/blobs", stale)

    # an OCI layout checks a known digest as it writes
    layout = OciLayoutStore(tmp_path / "layout")
    with pytest.raises(ConflictError, match=rf"blob {stale} for .* hashes to {sha256_digest(data)} when written"):
        layout.write_blob(iter(pieces), lambda: stale, len(data), digest_known=True)
    assert not layout.has_blob(stale)
    assert [path.name for path in (tmp_path / "layout" / "blobs" / "sha256").iterdir()] == []
    layout.write_blob(iter(pieces), lambda: sha256_digest(data), len(data), digest_known=True)
    assert b"".join(layout.read_blob(sha256_digest(data))) == data


# VmHWM, not ru_maxrss: the latter carries the (large) pytest parent's peak across fork and exec.
MEMORY_PROBE = """
import re, sys
from pathlib import Path
from oci_images import build_image
def peak_kib():
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
package, host, caches = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
before = peak_kib()
for repository in ("memory/new", "memory/shared"):  # upload while hashing; hash, HEAD, then upload
    result = build_image(package, f"{host}/{repository}:v2", base_image="scratch", insecure=True,
                         cache_dir=caches / repository, layer_threshold="1M", show_progress=False)
    assert [item.outcome for item in result.layers] == ["uploaded"] * len(result.layers), result.layers
print((peak_kib() - before) // 1024)
"""


def test_concurrent_layer_pushes_stay_within_the_memory_bound(registry: LocalRegistry, tmp_path: Path) -> None:
    package = tmp_path / "big"
    package.mkdir()
    for index in range(6):  # more layers than concurrent uploads, each far larger than the bound per upload
        (package / f"shard-{index}.bin").write_bytes(os.urandom(16 << 20))
    # an earlier image in memory/shared makes the probe's second push hash every layer before uploading it
    small = make_package(tmp_path / "small")
    build_image(small, f"{registry.host}/memory/shared:v1", base_image="scratch", insecure=True, cache_dir=tmp_path)
    probe = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(package), registry.host, str(tmp_path / "caches")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    bound_mib = CONCURRENCY * (READ_AHEAD + 2)  # chunks of 1 MiB in flight, see oci_images.push
    grown_mib = int(probe.stdout.strip())
    assert grown_mib <= bound_mib + 16, f"peak RSS grew by {grown_mib} MiB pushing 6 x 16 MiB"
