"""One deterministic tar layer holding a directory under a prefix, streamed in one pass.

The layer is a pure function of the directory's names, file modes (0755 when any execute
bit is set, else 0644) and contents: entries sorted by path, mtime 0, uid/gid 0, empty
owner names, PAX format, and for gzip a fixed header (mtime 0) so a rebuild gives the same
digest. Nothing is staged on disk: :meth:`LayerPlan.chunks` reads each file once in 1 MiB
pieces and the caller hashes and uploads them as they come.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from serving_core.errors import ConflictError, InvalidInputError

CHUNK_SIZE = 1 << 20
# Bumped whenever the bytes produced for the same tree change; part of the digest-cache key.
LAYER_FORMAT_VERSION = 1
_BLOCK = tarfile.BLOCKSIZE
_END_OF_ARCHIVE = bytes(2 * _BLOCK)

EntryKind = Literal["dir", "file", "symlink"]


@dataclass(frozen=True)
class LayerEntry:
    """One member of the layer, with the stat facts that identify its content."""

    member_name: str
    kind: EntryKind
    path: Path
    size: int
    mode: int
    link_target: str
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    def header(self) -> bytes:
        """The member's tar header (and PAX header when a name needs one)."""
        info = tarfile.TarInfo(self.member_name + ("/" if self.kind == "dir" else ""))
        info.mode = self.mode
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        if self.kind == "dir":
            info.type = tarfile.DIRTYPE
        elif self.kind == "symlink":
            info.type = tarfile.SYMTYPE
            info.linkname = self.link_target
        else:
            info.type = tarfile.REGTYPE
            info.size = self.size
        return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")

    def stat_key(self) -> list[int | str]:
        """Facts that change whenever the content may have changed (ctime cannot be set back)."""
        return [
            self.member_name,
            self.kind,
            self.size,
            self.mode,
            self.link_target,
            self.mtime_ns,
            self.ctime_ns,
            self.inode,
            self.device,
        ]


@dataclass(frozen=True)
class LayerPlan:
    """The scanned tree of a layer: what will be written, its exact size and its fingerprint."""

    root: Path
    prefix: str
    entries: tuple[LayerEntry, ...]

    @property
    def tar_size(self) -> int:
        """Exact size of the uncompressed tar, known before a byte is read."""
        total = len(_END_OF_ARCHIVE)
        for entry in self.entries:
            total += len(entry.header())
            if entry.kind == "file":
                total += _padded(entry.size)
        return total

    @property
    def file_bytes(self) -> int:
        """Total size of the regular files."""
        return sum(entry.size for entry in self.entries if entry.kind == "file")

    def fingerprint(self, compression: str) -> str:
        """A key for the digest cache: root, prefix, compression and every entry's stat facts."""
        document = {
            "format": LAYER_FORMAT_VERSION,
            "root": str(self.root),
            "prefix": self.prefix,
            "compression": compression,
            "entries": [entry.stat_key() for entry in self.entries],
        }
        return hashlib.sha256(json.dumps(document, separators=(",", ":")).encode()).hexdigest()

    def chunks(self) -> Iterator[bytes]:
        """Yield the uncompressed tar in pieces of about :data:`CHUNK_SIZE` bytes.

        Raises:
            ConflictError: a file changed between the scan and the read, so the layer would not
                match the plan (and a cached digest would go stale).
        """
        return _coalesce(self._raw_chunks())

    def _raw_chunks(self) -> Iterator[bytes]:
        for entry in self.entries:
            yield entry.header()
            if entry.kind == "file":
                yield from _file_chunks(entry)
                padding = _padded(entry.size) - entry.size
                if padding:
                    yield bytes(padding)
        yield _END_OF_ARCHIVE


def _padded(size: int) -> int:
    return (size + _BLOCK - 1) // _BLOCK * _BLOCK


def _file_chunks(entry: LayerEntry) -> Iterator[bytes]:
    changed = ConflictError(
        f"{entry.path} changed while the image layer was being built",
        hint="do not modify the package while building; run the build again",
    )
    with entry.path.open("rb") as stream:
        before = os.fstat(stream.fileno())
        if (before.st_size, before.st_mtime_ns, before.st_ino) != (entry.size, entry.mtime_ns, entry.inode):
            raise changed
        remaining = entry.size
        while remaining:
            chunk = stream.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                raise changed
            remaining -= len(chunk)
            yield chunk
        after = os.fstat(stream.fileno())
        if (after.st_size, after.st_mtime_ns, after.st_ctime_ns) != (entry.size, entry.mtime_ns, entry.ctime_ns):
            raise changed


def _coalesce(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """Join small pieces (headers, padding) so each yielded chunk is about CHUNK_SIZE bytes."""
    pending: list[bytes] = []
    pending_size = 0
    for piece in pieces:
        pending.append(piece)
        pending_size += len(piece)
        if pending_size >= CHUNK_SIZE:
            yield pending[0] if len(pending) == 1 else b"".join(pending)
            pending, pending_size = [], 0
    if pending:
        yield b"".join(pending)


def scan_tree(root: Path, prefix: str = "models") -> LayerPlan:
    """Scan ``root`` into a layer plan with every member under ``prefix``.

    Symlinks are kept when they point inside ``root`` (absolute ones are rewritten relative);
    one that escapes ``root`` is an error, and so are sockets, FIFOs and devices.

    Raises:
        InvalidInputError: ``root`` is missing, not a directory, holds no file, holds a symlink
            that escapes it, a special file, or a file that cannot be read.
    """
    root = root.absolute()
    if not root.is_dir():
        raise InvalidInputError(
            f"package directory {root} does not exist or is not a directory",
            hint="pass the directory written by the packaging step",
        )
    real_root = root.resolve()
    prefix = prefix.strip("/")
    entries: list[LayerEntry] = []
    if prefix:
        entries.append(_directory_entry(prefix, root))
    _scan_directory(root, real_root, prefix, entries)
    if not any(entry.kind == "file" for entry in entries):
        raise InvalidInputError(f"package directory {root} holds no files", hint="build the package first")
    return LayerPlan(root=root, prefix=prefix, entries=tuple(entries))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def _directory_entry(member_name: str, path: Path) -> LayerEntry:
    info = path.stat()
    return LayerEntry(member_name, "dir", path, 0, 0o755, "", 0, 0, info.st_ino, info.st_dev)


def _scan_directory(directory: Path, real_root: Path, member_prefix: str, entries: list[LayerEntry]) -> None:
    with os.scandir(directory) as iterator:
        children = sorted(iterator, key=lambda child: child.name)
    for child in children:
        path = Path(child.path)
        member_name = _join(member_prefix, child.name)
        try:
            member_name.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidInputError(
                f"package entry {path!r} has a name that is not valid UTF-8", hint="rename it"
            ) from error
        info = child.stat(follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode):
            target = _symlink_target(path, real_root)
            entries.append(
                LayerEntry(
                    member_name,
                    "symlink",
                    path,
                    0,
                    0o777,
                    target,
                    info.st_mtime_ns,
                    info.st_ctime_ns,
                    info.st_ino,
                    info.st_dev,
                )
            )
        elif stat.S_ISDIR(info.st_mode):
            entries.append(_directory_entry(member_name, path))
            _scan_directory(path, real_root, member_name, entries)
        elif stat.S_ISREG(info.st_mode):
            if not os.access(path, os.R_OK):
                raise InvalidInputError(f"package file {path} is not readable", hint="fix its permissions")
            mode = 0o755 if info.st_mode & 0o111 else 0o644
            entries.append(
                LayerEntry(
                    member_name,
                    "file",
                    path,
                    info.st_size,
                    mode,
                    "",
                    info.st_mtime_ns,
                    info.st_ctime_ns,
                    info.st_ino,
                    info.st_dev,
                )
            )
        else:
            raise InvalidInputError(
                f"package entry {path} is not a regular file, directory or symlink",
                hint="remove sockets, FIFOs and device files from the package",
            )


def _symlink_target(path: Path, real_root: Path) -> str:
    """The link text to store: relative, and only when it resolves inside the package."""
    resolved = path.resolve()
    if not resolved.is_relative_to(real_root):
        raise InvalidInputError(
            f"symlink {path} -> {os.readlink(path)} points outside the package directory {real_root}",
            hint="copy the target into the package instead of linking to it",
        )
    if not resolved.exists():
        raise InvalidInputError(
            f"symlink {path} -> {os.readlink(path)} points to nothing",
            hint="remove the dangling link or add its target to the package",
        )
    return os.path.relpath(resolved, path.parent.resolve())
