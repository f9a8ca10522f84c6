"""Layered modelcars in a real registry: versions and models share layers, only new bytes travel."""

from __future__ import annotations

import json
import os
import re
import tarfile
from pathlib import Path

import pytest

from aiserving.local.registry import LocalRegistry
from oci_images import build_image
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
