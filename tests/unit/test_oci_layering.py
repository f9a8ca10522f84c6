"""The layer plan: one reproducible layer per large file, the rest shared, the same tree in the end."""

from __future__ import annotations

import io
import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from oci_images.layer import scan_tree
from oci_images.layering import MAX_FILE_LAYERS, layer_settings, parse_size, plan_layers
from oci_images.push import read_ahead
from serving_core.errors import InvalidInputError
from tests.support.oci import make_package, snapshot


def extract_layers(tars: list[bytes], out: Path) -> Path:
    """Apply layers in order, the way a runtime does (KServe keeps only models/ and strips it)."""
    for data in tars:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            archive.extractall(out, filter="data")
    return out / "models"


def test_large_files_get_a_layer_each_in_path_order_and_the_rest_share_the_last(tmp_path: Path) -> None:
    package = make_package(tmp_path / "pkg")
    (package / "fraud" / "2").mkdir()
    (package / "fraud" / "2" / "model.onnx").write_bytes(os.urandom(200_000))
    layers = plan_layers(scan_tree(package), "per-file", 100_000)
    assert [(layer.kind, layer.description) for layer in layers] == [
        ("file", "/models/fraud/1/model.onnx"),
        ("file", "/models/fraud/2/model.onnx"),
        ("small-files", "6 files, directories, symlinks"),
    ]
    first = layers[0]
    assert [entry.member_name for entry in first.content.entries] == [
        "models",
        "models/fraud",
        "models/fraud/1",
        "models/fraud/1/model.onnx",
    ]
    assert first.annotations() == {
        "ai.creativeflow.layer.kind": "file",
        "ai.creativeflow.layer.file-count": "1",
        "ai.creativeflow.layer.file": "/models/fraud/1/model.onnx",
    }
    assert "models/fraud/1/model.onnx" not in {entry.member_name for entry in layers[-1].content.entries}
    assert layers[-1].annotations()["ai.creativeflow.layer.kind"] == "small-files"

    # applied in order, the layers give exactly the tree the single layer gives
    split = extract_layers([b"".join(layer.content.chunks()) for layer in layers], tmp_path / "split")
    (single,) = plan_layers(scan_tree(package), "single")
    assert single.kind == "package"
    whole = extract_layers([b"".join(single.content.chunks())], tmp_path / "single")
    assert snapshot(split) == snapshot(whole) == snapshot(package)


def test_a_file_layer_depends_only_on_the_file_path_mode_and_content(tmp_path: Path) -> None:
    weights = os.urandom(150_000)
    one = make_package(tmp_path / "one", weights=weights)
    two = make_package(tmp_path / "two", weights=weights)
    (two / "config.json").write_text('{"changed": true}')  # another version: a new small file
    (two / "fraud" / "1" / "model.onnx").chmod(0o600)  # only the execute bit counts
    first = plan_layers(scan_tree(one), "per-file", 100_000)
    second = plan_layers(scan_tree(two), "per-file", 100_000)
    assert b"".join(first[0].content.chunks()) == b"".join(second[0].content.chunks())
    assert b"".join(first[-1].content.chunks()) != b"".join(second[-1].content.chunks())


def test_threshold_edges_empty_directories_and_the_layer_cap(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "empty").mkdir(parents=True)
    (root / "big.bin").write_bytes(b"x" * 1000)
    only_big = plan_layers(scan_tree(root), "per-file", 1000)
    # the empty directory still needs the shared layer
    assert [layer.kind for layer in only_big] == ["file", "small-files"]
    assert [entry.member_name for entry in only_big[-1].content.entries] == ["models", "models/empty"]
    (root / "empty").rmdir()
    assert [layer.kind for layer in plan_layers(scan_tree(root), "per-file", 1000)] == ["file"]
    assert [layer.kind for layer in plan_layers(scan_tree(root), "per-file", 1001)] == ["package"]

    many = tmp_path / "many"
    many.mkdir()
    for index in range(MAX_FILE_LAYERS + 2):
        (many / f"shard-{index:03d}.bin").write_bytes(b"s" * (100 + index))
    layers = plan_layers(scan_tree(many), "per-file", 1)
    assert len(layers) == MAX_FILE_LAYERS + 1
    # the two smallest files share the last layer
    assert [entry.member_name for entry in layers[-1].files] == ["models/shard-000.bin", "models/shard-001.bin"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1048576", 1 << 20), ("32M", 32 << 20), ("512KiB", 512 << 10), ("1g", 1 << 30), ("0", 0), (7, 7)],
)
def test_sizes(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


def test_bad_settings_name_the_value_and_where_it_came_from() -> None:
    with pytest.raises(InvalidInputError, match="layer threshold '12 apples' is not a size"):
        parse_size("12 apples")
    with pytest.raises(InvalidInputError, match=r"\$AISERVING_LAYER_THRESHOLD 'lots' is not a size"):
        layer_settings(None, None, {"AISERVING_LAYER_THRESHOLD": "lots"})
    with pytest.raises(InvalidInputError, match="layer mode 'per-shard' is not supported"):
        layer_settings("per-shard", None, {})
    assert layer_settings(None, None, {}) == ("per-file", 32 << 20)
    assert layer_settings(None, None, {"AISERVING_IMAGE_LAYERS": "single", "AISERVING_LAYER_THRESHOLD": "1M"}) == (
        "single",
        1 << 20,
    )
    assert layer_settings("per-file", "2M", {"AISERVING_IMAGE_LAYERS": "single"}) == ("per-file", 2 << 20)


def test_read_ahead_passes_chunks_and_errors_through_and_stops_its_reader() -> None:
    assert list(read_ahead(iter([b"a", b"b", b"c"]), 2)) == [b"a", b"b", b"c"]

    def failing() -> Iterator[bytes]:
        yield b"a"
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(read_ahead(failing(), 2))

    produced: list[int] = []

    def endless() -> Iterator[bytes]:
        for index in range(10_000):
            produced.append(index)
            yield b"x"

    reader = read_ahead(endless(), 2)
    assert next(reader) == b"x"
    reader.close()  # the consumer gave up (a failed upload): the producer thread ends
    assert len(produced) < 10
    assert not [thread for thread in threading.enumerate() if thread.name == "read-ahead"]
