"""The deterministic model layer: bytes, order, metadata, symlink rules, change detection."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from oci_images.digests import DigestingStream
from oci_images.layer import scan_tree
from serving_core.errors import ConflictError, InvalidInputError


def make_tree(root: Path, *, mtime: int) -> Path:
    (root / "b" / "nested").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha")
    (root / "b" / "nested" / "weights.bin").write_bytes(bytes(range(256)) * 10)
    (root / "b" / "run.sh").write_text("#!/bin/sh\n")
    (root / "b" / "run.sh").chmod(0o700)
    (root / "b" / "link").symlink_to("nested/weights.bin")
    (root / "b" / "absolute-link").symlink_to(root / "a.txt")
    for path in [*root.rglob("*"), root]:
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    return root


def tar_bytes(root: Path, prefix: str = "models") -> bytes:
    return b"".join(scan_tree(root, prefix).chunks())


def test_members_are_sorted_with_fixed_metadata(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "pkg", mtime=1_700_000_000)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes(root)), mode="r:") as archive:
        members = [
            (m.name, m.type, oct(m.mode), m.size, m.linkname, m.mtime, m.uid, m.gid, m.uname, m.gname)
            for m in archive.getmembers()
        ]
    assert members == [
        ("models", tarfile.DIRTYPE, "0o755", 0, "", 0, 0, 0, "", ""),
        ("models/a.txt", tarfile.REGTYPE, "0o644", 5, "", 0, 0, 0, "", ""),
        ("models/b", tarfile.DIRTYPE, "0o755", 0, "", 0, 0, 0, "", ""),
        ("models/b/absolute-link", tarfile.SYMTYPE, "0o777", 0, "../a.txt", 0, 0, 0, "", ""),
        ("models/b/link", tarfile.SYMTYPE, "0o777", 0, "nested/weights.bin", 0, 0, 0, "", ""),
        ("models/b/nested", tarfile.DIRTYPE, "0o755", 0, "", 0, 0, 0, "", ""),
        ("models/b/nested/weights.bin", tarfile.REGTYPE, "0o644", 2560, "", 0, 0, 0, "", ""),
        ("models/b/run.sh", tarfile.REGTYPE, "0o755", 10, "", 0, 0, 0, "", ""),
    ]


def test_same_content_gives_the_same_bytes_and_the_size_is_known_up_front(tmp_path: Path) -> None:
    first = tar_bytes(make_tree(tmp_path / "one", mtime=1_600_000_000))
    second_root = make_tree(tmp_path / "two", mtime=1_800_000_000)
    second = tar_bytes(second_root)
    assert first == second
    assert scan_tree(second_root).tar_size == len(second)


def test_empty_prefix_puts_the_tree_at_the_root(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "rootfs", mtime=0)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes(root, prefix="")), mode="r:") as archive:
        assert archive.getnames()[:2] == ["a.txt", "b"]


def test_long_and_non_ascii_names_use_pax_headers(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    root.mkdir()
    name = "ü" + "x" * 150
    (root / name).write_bytes(b"1")
    with tarfile.open(fileobj=io.BytesIO(tar_bytes(root)), mode="r:") as archive:
        assert archive.getnames() == ["models", f"models/{name}"]


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_digesting_stream_hashes_tar_and_blob(tmp_path: Path, compression: str) -> None:
    root = make_tree(tmp_path / "pkg", mtime=0)
    plain = tar_bytes(root)
    stream = DigestingStream(scan_tree(root).chunks(), "gzip" if compression == "gzip" else "none")
    blob = b"".join(stream)
    again = DigestingStream(scan_tree(root).chunks(), "gzip" if compression == "gzip" else "none")
    assert b"".join(again) == blob
    assert stream.diff_id == f"sha256:{hashlib.sha256(plain).hexdigest()}"
    assert stream.digest == f"sha256:{hashlib.sha256(blob).hexdigest()}"
    assert stream.size == len(blob)
    assert (gzip.decompress(blob) if compression == "gzip" else blob) == plain


def test_symlink_escaping_the_package_is_refused(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "pkg", mtime=0)
    (tmp_path / "secret").write_text("x")
    (root / "escape").symlink_to("../secret")
    with pytest.raises(InvalidInputError, match=r"symlink .*/pkg/escape -> \.\./secret points outside the package"):
        scan_tree(root)


def test_dangling_symlink_and_special_files_are_refused(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "pkg", mtime=0)
    (root / "dangling").symlink_to("missing")
    with pytest.raises(InvalidInputError, match="dangling -> missing points to nothing"):
        scan_tree(root)
    (root / "dangling").unlink()
    os.mkfifo(root / "pipe")
    with pytest.raises(InvalidInputError, match="is not a regular file, directory or symlink"):
        scan_tree(root)


def test_missing_or_empty_package_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist or is not a directory"):
        scan_tree(tmp_path / "nope")
    (tmp_path / "empty" / "dir").mkdir(parents=True)
    with pytest.raises(InvalidInputError, match="holds no files"):
        scan_tree(tmp_path / "empty")


def test_a_file_changed_after_the_scan_fails_the_stream(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "pkg", mtime=0)
    plan = scan_tree(root)
    (root / "a.txt").write_bytes(b"ALPHA")  # same size, new mtime and ctime
    with pytest.raises(ConflictError, match=r"a\.txt changed while the image layer was being built"):
        b"".join(plan.chunks())


def test_a_file_growing_during_the_read_fails_the_stream(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    root.mkdir()
    big = root / "big.bin"
    big.write_bytes(b"\0" * (3 << 20))
    chunks = scan_tree(root).chunks()
    next(chunks)
    with big.open("ab") as stream:
        stream.write(b"more")
    with pytest.raises(ConflictError, match="changed while the image layer was being built"):
        list(chunks)


def test_fingerprint_moves_with_any_write_even_when_size_and_mtime_are_restored(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "pkg", mtime=0)
    before = scan_tree(root).fingerprint("none")
    assert scan_tree(root).fingerprint("none") == before
    assert scan_tree(root).fingerprint("gzip") != before
    target = root / "b" / "nested" / "weights.bin"
    info = target.stat()
    target.write_bytes(b"\1" * info.st_size)
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert target.stat().st_mtime_ns == info.st_mtime_ns
    assert scan_tree(root).fingerprint("none") != before


def test_names_that_are_not_utf8_are_refused(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "pkg", mtime=0)
    (root / os.fsdecode(b"bad-\xff-name")).write_bytes(b"x")
    with pytest.raises(InvalidInputError, match="has a name that is not valid UTF-8"):
        scan_tree(root)
