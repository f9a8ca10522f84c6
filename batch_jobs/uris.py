"""Where a job reads and writes: an ``s3://bucket/prefix`` through boto3, or a local (PVC-mounted) path.

Both kinds offer the same small interface: list objects under the location, read one, write one
atomically (S3 stores a whole object per PUT; a file is written under a temporary name, then renamed),
delete one. Keys are relative to the location and use ``/``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from serving_core.errors import (
    AiServingError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RemoteServiceError,
    UnreachableError,
)

# boto3 reads AWS_ENDPOINT_URL itself; KServe's S3 secrets annotate the endpoint as S3_ENDPOINT (host:port).
ENDPOINT_ENV = ("AWS_ENDPOINT_URL", "S3_ENDPOINT")


@dataclass(frozen=True)
class StoredObject:
    """One object (file) under a location: its key and what identifies its content."""

    key: str
    size: int
    # The S3 ETag, or the file's modification time in nanoseconds: changes when the content is replaced.
    version: str


class Storage(Protocol):
    """A place objects are listed, read and written by key."""

    uri: str

    def list(self, prefix: str = "") -> list[StoredObject]:
        """Every object under the location (or under ``prefix`` in it), sorted by key."""

    def read(self, key: str) -> bytes:
        """The whole object ``key``."""

    def write(self, key: str, data: bytes) -> None:
        """Store ``data`` as ``key`` so that readers see either the old object or all of the new one."""

    def delete(self, key: str) -> None:
        """Remove ``key``; no error when it is already gone."""

    def exists(self, key: str) -> bool:
        """Whether ``key`` is stored."""

    def local_path(self, key: str) -> Path | None:
        """The file of ``key`` when the location is a path (readers may then stream it), else ``None``."""


class LocalStorage:
    """A directory (a PVC mount in a pod) or a single file."""

    def __init__(self, root: Path) -> None:
        """Use ``root``: a directory of objects, or one file (then its key is its name)."""
        self.root = root
        self.uri = str(root)

    def _path(self, key: str) -> Path:
        return self.root if self.root.is_file() and key == self.root.name else self.root / key

    def list(self, prefix: str = "") -> list[StoredObject]:
        """Every regular file under the directory (or the file itself), sorted by key."""
        if self.root.is_file():
            paths = [(self.root.name, self.root)]
        elif self.root.is_dir():
            paths = [(path.relative_to(self.root).as_posix(), path) for path in self.root.rglob("*") if path.is_file()]
        else:
            return []
        objects = []
        for key, path in paths:
            if key.startswith(prefix):
                stat = path.stat()
                objects.append(StoredObject(key, stat.st_size, str(stat.st_mtime_ns)))
        return sorted(objects, key=lambda stored: stored.key)

    def read(self, key: str) -> bytes:
        """The file's bytes.

        Raises:
            NotFoundError: no such file; PermissionDeniedError: not readable by this process.
        """
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError as error:
            raise NotFoundError(f"{path} does not exist", hint="check the path (is the volume mounted?)") from error
        except PermissionError as error:
            raise PermissionDeniedError(
                f"{path} is not readable: {error}", hint="check the file's owner and mode"
            ) from error

    def write(self, key: str, data: bytes) -> None:
        """Write a temporary file beside the target, flush it to disk, then rename it over the target."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def delete(self, key: str) -> None:
        """Remove the file if it is there."""
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        """Whether the file exists."""
        return self._path(key).is_file()

    def local_path(self, key: str) -> Path | None:
        """The file itself."""
        return self._path(key)


def _s3_error(error: Exception, uri: str) -> AiServingError:
    """Our error for a boto3/botocore failure on ``uri``, by what the storage answered."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(error, EndpointConnectionError):
        return UnreachableError(
            f"object storage for {uri} is unreachable: {error}",
            hint="check the S3 endpoint (AWS_ENDPOINT_URL or --s3-endpoint) and the network path to it",
        )
    if isinstance(error, NoCredentialsError):
        return PermissionDeniedError(
            f"no S3 credentials to read {uri}", hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchBucket", "NoSuchKey", "404"):
            return NotFoundError(f"{uri} does not exist ({code})", hint="check the bucket and prefix of the URI")
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return PermissionDeniedError(
                f"object storage refused access to {uri} ({code})", hint="check the S3 credentials and bucket policy"
            )
        return RemoteServiceError(f"object storage failed on {uri}: {error}", retryable=code.startswith("5"))
    return UnreachableError(f"object storage failed on {uri}: {error}")


class S3Storage:
    """A bucket and key prefix on an S3-compatible store (AWS, SeaweedFS, MinIO, ...)."""

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        """Use objects under ``prefix`` in ``bucket`` through a boto3 S3 ``client``."""
        self.bucket = bucket
        self.prefix = prefix
        self.client = client
        self.uri = f"s3://{bucket}/{prefix}"

    @contextlib.contextmanager
    def _errors(self, key: str = "") -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError) as error:
            raise _s3_error(error, self.uri + key) from error

    def _key(self, key: str) -> str:
        if not key:
            return self.prefix
        return f"{self.prefix.rstrip('/')}/{key}" if self.prefix else key

    def list(self, prefix: str = "") -> list[StoredObject]:
        """Every object whose key starts with the location's prefix (as a folder, or the one object named so)."""
        objects = []
        base = self.prefix
        with self._errors():
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=base):
                for entry in page.get("Contents", []):
                    name: str = entry["Key"]
                    if name == base:
                        key = base.rsplit("/", 1)[-1]
                    elif not base or base.endswith("/") or name.startswith(base + "/"):
                        key = name[len(base) :].lstrip("/")
                    else:
                        continue  # "data" must not match "database/..."
                    if key.startswith(prefix) and not key.endswith("/"):
                        objects.append(StoredObject(key, int(entry["Size"]), str(entry["ETag"]).strip('"')))
        return sorted(objects, key=lambda stored: stored.key)

    def _object_key(self, key: str) -> str:
        # A location that names one object is listed under its last segment.
        if self.prefix and not self.prefix.endswith("/") and key == self.prefix.rsplit("/", 1)[-1]:
            with contextlib.suppress(Exception):
                self.client.head_object(Bucket=self.bucket, Key=self.prefix)
                return self.prefix
        return self._key(key)

    def read(self, key: str) -> bytes:
        """The object's bytes."""
        with self._errors(key):
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=self._object_key(key))["Body"].read()
        return body

    def write(self, key: str, data: bytes) -> None:
        """One PUT of the whole object: S3 never shows a partly written object."""
        with self._errors(key):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def delete(self, key: str) -> None:
        """Delete the object (S3 answers success for a missing key too)."""
        with self._errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def exists(self, key: str) -> bool:
        """HEAD the object."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code", "")) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise _s3_error(error, self.uri + key) from error
        return True

    def local_path(self, key: str) -> Path | None:
        """Objects are not files."""
        return None


def s3_endpoint(explicit: str | None = None) -> str | None:
    """The S3 endpoint URL: ``explicit``, else AWS_ENDPOINT_URL, else S3_ENDPOINT (``http://`` added if bare)."""
    value = explicit or next((os.environ[name] for name in ENDPOINT_ENV if os.environ.get(name)), None)
    if value and "://" not in value:
        secure = os.environ.get("S3_USE_HTTPS", "1") != "0"
        value = f"{'https' if secure else 'http'}://{value}"
    return value


def open_location(uri: str, *, endpoint_url: str | None = None) -> Storage:
    """The storage behind ``uri``: ``s3://bucket/prefix`` or a path (``file://`` allowed).

    Raises:
        InvalidInputError: an empty URI, an unsupported scheme or an S3 URI without a bucket.
    """
    if not uri:
        raise InvalidInputError("the URI is empty", hint="give s3://bucket/prefix or a path")
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise InvalidInputError(f"{uri!r} names no bucket", hint="write s3://BUCKET/PREFIX")
        import boto3
        from botocore.config import Config

        # Path-style addressing: SeaweedFS, MinIO and most in-cluster stores have no per-bucket DNS names.
        client = boto3.client(
            "s3",
            endpoint_url=s3_endpoint(endpoint_url),
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}),
        )
        return S3Storage(bucket, prefix, client)
    if "://" in uri and not uri.startswith("file://"):
        scheme = uri.split("://", 1)[0]
        raise InvalidInputError(f"URI scheme {scheme}:// is not supported: {uri}", hint="use s3:// or a path")
    return LocalStorage(Path(uri.removeprefix("file://")))
