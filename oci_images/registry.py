"""A small OCI distribution-spec client on requests: blobs, uploads, mounts and manifests.

Push order and rules follow the distribution spec as served by distribution 2.8: the upload
``Location`` is used exactly as returned (it carries ``_state``) with ``digest=`` appended;
a mount is always sent with ``from``; a 202 on a mount means "upload it yourself".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import requests

from oci_images import media_types
from oci_images.auth import authorization_for, parse_challenge
from oci_images.credentials import HOW_TO_PASS_CREDENTIALS, Credentials
from oci_images.digests import sha256_digest
from serving_core.errors import (
    AiServingError,
    ConflictError,
    NotFoundError,
    OperationTimeoutError,
    PermissionDeniedError,
    RemoteServiceError,
    UnreachableError,
)

_LOG = logging.getLogger(__name__)
DEFAULT_TIMEOUT_S = 60.0
_CHUNK = 1 << 20
# Blobs up to this size (an image config, a layer of small files) are read into memory and sent
# with the PUT that commits them.
MONOLITHIC_MAX = 1 << 20


class RegistryClient:
    """Talk to one registry host, answering auth challenges on the way.

    Args:
        host: ``host[:port]`` as written in image references.
        api_host: the host that serves the API (differs for Docker Hub).
        credentials: what to log in with, or None for anonymous access.
        insecure: plain http instead of https.
        ca_file: a PEM bundle to verify the registry's TLS certificate with.
        timeout_s: seconds to wait for each response to start.
    """

    def __init__(
        self,
        host: str,
        *,
        api_host: str | None = None,
        credentials: Credentials | None = None,
        insecure: bool = False,
        ca_file: Path | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.host = host
        self.base_url = f"{'http' if insecure else 'https'}://{api_host or host}"
        self.credentials = credentials
        self.timeout_s = timeout_s
        self.session = requests.Session()
        # Passed on every request: a session-level verify loses to $REQUESTS_CA_BUNDLE in requests.
        self.verify: str | bool = str(ca_file) if ca_file else True
        self._authorization: str | None = None
        self._scopes: set[str] = set()

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    def need_scope(self, repository: str, actions: str) -> None:
        """Ask for ``repository:<name>:<actions>`` whenever a token is fetched."""
        self._scopes.add(f"repository:{repository}:{actions}")

    # -- plumbing -----------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """Absolute URL of an API path (``/v2/...``)."""
        return f"{self.base_url}{path}"

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if self._authorization:
            headers["Authorization"] = self._authorization
        try:
            return self.session.request(
                method, url, headers=headers, timeout=self.timeout_s, verify=self.verify, **kwargs
            )
        except requests.exceptions.SSLError as error:
            raise UnreachableError(
                f"TLS with registry {self.host} failed: {error}",
                hint="pass --ca-file PATH with the CA that signed the registry's certificate, "
                "or --insecure if the registry speaks plain http",
            ) from error
        except requests.Timeout as error:
            raise OperationTimeoutError(
                f"registry {self.host} did not answer {method} {url} within {self.timeout_s:g} s",
                hint="check the registry's health or raise the timeout",
            ) from error
        except requests.ConnectionError as error:
            raise UnreachableError(
                f"registry {self.host} cannot be reached at {self.base_url}: {error}",
                hint="check the registry address and port; for a registry without TLS pass --insecure",
            ) from error

    def request(self, method: str, url: str, *, ok: tuple[int, ...], what: str, **kwargs: Any) -> requests.Response:
        """Send a request, log in when challenged, and map failures to the error hierarchy.

        A body that is an iterator cannot be replayed, so callers establish auth first with a
        cheap request (the upload's POST does that).

        Raises:
            PermissionDeniedError: 401 or 403.
            NotFoundError: 404 where it is not in ``ok``.
            RemoteServiceError: any other unexpected status.
        """
        response = self._send(method, url, **kwargs)
        if response.status_code == 401 and "WWW-Authenticate" in response.headers:
            replayable = not isinstance(kwargs.get("data"), Iterator)
            challenge = parse_challenge(response.headers["WWW-Authenticate"])
            had_authorization = self._authorization is not None
            self._authorization = authorization_for(
                challenge,
                host=self.host,
                credentials=self.credentials,
                scopes=sorted(self._scopes),
                session=self.session,
                verify=self.verify,
                timeout_s=self.timeout_s,
            )
            if replayable and not (had_authorization and challenge.scheme == "basic"):
                response = self._send(method, url, **kwargs)
        if response.status_code in ok:
            return response
        raise self._error(response, what)

    def _error(self, response: requests.Response, what: str) -> AiServingError:
        detail = _error_detail(response)
        status = response.status_code
        if status == 401:
            source = self.credentials.source if self.credentials else "no credentials (anonymous)"
            return PermissionDeniedError(
                f"registry {self.host} refused {what}: HTTP 401 with {source}{detail}", hint=HOW_TO_PASS_CREDENTIALS
            )
        if status == 403:
            source = self.credentials.source if self.credentials else "anonymous access"
            return PermissionDeniedError(
                f"registry {self.host} does not allow {what} with {source}: HTTP 403{detail}",
                hint="use credentials with push (and pull) rights on the repository; " + HOW_TO_PASS_CREDENTIALS,
            )
        if status == 404:
            return NotFoundError(f"registry {self.host}: {what} not found{detail}", hint="check the image reference")
        return RemoteServiceError(
            f"registry {self.host} failed {what}: HTTP {status}{detail}",
            hint="see the registry's log",
            retryable=status >= 500 or status == 429,
        )

    # -- API ------------------------------------------------------------------------------------

    def ping(self) -> None:
        """Check ``/v2/`` answers (200, or 401 when auth is needed)."""
        self.request("GET", self.url("/v2/"), ok=(200, 401), what="the API version check")

    def blob_exists(self, repository: str, digest: str) -> bool:
        """HEAD a blob: True when the repository already has it."""
        response = self.request(
            "HEAD", self.url(f"/v2/{repository}/blobs/{digest}"), ok=(200, 404), what=f"blob {digest}"
        )
        return response.status_code == 200

    def has_tags(self, repository: str) -> bool:
        """True when the repository holds at least one tag (404: it does not exist yet)."""
        response = self.request(
            "GET",
            self.url(f"/v2/{repository}/tags/list"),
            params={"n": "1"},
            ok=(200, 404),
            what=f"the tags of {repository}",
        )
        if response.status_code == 404:
            return False
        try:
            tags = response.json().get("tags")
        except ValueError:
            return False
        return bool(tags)

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Ask the registry to link a blob from another repository; False when it declined."""
        response = self.request(
            "POST",
            self.url(f"/v2/{repository}/blobs/uploads/"),
            params={"mount": digest, "from": from_repository},
            ok=(201, 202),
            what=f"mounting {digest} from {from_repository} into {repository}",
        )
        if response.status_code == 202 and "Location" in response.headers:
            self.cancel_upload(self._location(response))
        return response.status_code == 201

    def upload_blob(
        self,
        repository: str,
        chunks: Iterable[bytes],
        digest: Callable[[], str],
        size: int | None = None,
        *,
        digest_known: bool = False,
    ) -> None:
        """Upload a blob in one streamed request, then commit it with ``digest()``.

        ``digest`` is called after ``chunks`` is exhausted, so a stream that hashes as it goes
        can supply it. With ``size`` (the exact byte count) the body carries a Content-Length
        and the chunks go to the socket as they are; without it, chunked transfer encoding.
        When the digest is known before the first byte (``digest_known``, with ``size``), or the
        blob is at most :data:`MONOLITHIC_MAX` bytes, the blob goes with the committing PUT and
        the registry checks it against the digest itself; otherwise a PATCH carries it and a
        PUT commits it. A failed upload is cancelled, leaving nothing behind.

        Raises:
            ConflictError: the bytes sent do not hash to the digest given before them (the
                source changed after it was hashed) or their count is not ``size``.
        """
        if size is not None and (digest_known or size <= MONOLITHIC_MAX):
            self._upload_in_put(repository, SizedBody(chunks, size) if digest_known else b"".join(chunks), digest)
            return
        start = self.request(
            "POST", self.url(f"/v2/{repository}/blobs/uploads/"), ok=(202,), what=f"starting an upload to {repository}"
        )
        location = self._location(start)
        body: Iterator[bytes] = iter(chunks) if size is None else SizedBody(chunks, size)
        try:
            patched = self.request(
                "PATCH",
                location,
                data=body,
                headers={"Content-Type": "application/octet-stream"},
                ok=(202,),
                what=f"uploading a blob to {repository}",
            )
            location = self._location(patched)
            final_digest = digest()
            separator = "&" if "?" in location else "?"
            self.request(
                "PUT",
                f"{location}{separator}digest={final_digest}",
                headers={"Content-Length": "0"},
                ok=(201,),
                what=f"committing blob {final_digest} to {repository}",
            )
        except BaseException:
            self.cancel_upload(location)
            raise

    def _upload_in_put(self, repository: str, data: bytes | SizedBody, digest: Callable[[], str]) -> None:
        """POST, then one PUT with the body and its digest: a round trip (and a registry fsync) less."""
        final_digest = digest()
        start = self.request(
            "POST", self.url(f"/v2/{repository}/blobs/uploads/"), ok=(202,), what=f"starting an upload to {repository}"
        )
        location = self._location(start)
        separator = "&" if "?" in location else "?"
        what = f"uploading blob {final_digest} to {repository}"
        try:
            response = self.request(
                "PUT",
                f"{location}{separator}digest={final_digest}",
                data=data,
                headers={"Content-Type": "application/octet-stream"},
                ok=(201, 400),
                what=what,
            )
        except BaseException:
            self.cancel_upload(location)
            raise
        if response.status_code == 400:
            self.cancel_upload(location)
            if "DIGEST_INVALID" in _error_detail(response):
                raise ConflictError(
                    f"registry {self.host} refused blob {final_digest} for {repository}: the bytes sent hash "
                    f"differently{_error_detail(response)}",
                    hint="do not modify the package while building; run the build again",
                )
            raise self._error(response, what)

    def cancel_upload(self, location: str) -> None:
        """Delete an upload session; failures are logged, never raised."""
        try:
            self._send("DELETE", location)
        except AiServingError as error:
            _LOG.warning("could not cancel upload %s: %s", location, error)

    def _location(self, response: requests.Response) -> str:
        location = response.headers.get("Location")
        if not location:
            raise RemoteServiceError(f"registry {self.host} answered an upload request without a Location header")
        return location if location.startswith(("http://", "https://")) else self.url(location)

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str]:
        """GET a manifest or index: its exact bytes and media type.

        Raises:
            NotFoundError: the repository or reference does not exist.
        """
        response = self.request(
            "GET",
            self.url(f"/v2/{repository}/manifests/{reference}"),
            headers={"Accept": media_types.MANIFEST_ACCEPT},
            ok=(200,),
            what=f"manifest {repository}:{reference}",
        )
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return response.content, media_type

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """PUT a manifest under a tag or digest; returns its digest."""
        response = self.request(
            "PUT",
            self.url(f"/v2/{repository}/manifests/{reference}"),
            data=body,
            headers={"Content-Type": media_type},
            ok=(201,),
            what=f"pushing manifest {repository}:{reference}",
        )
        digest = sha256_digest(body)
        returned = response.headers.get("Docker-Content-Digest")
        if returned and returned != digest:
            raise RemoteServiceError(f"registry {self.host} stored manifest {returned}, but we sent {digest}")
        return digest

    def get_blob(self, repository: str, digest: str) -> Iterator[bytes]:
        """Stream a blob's bytes (redirects to storage are followed)."""
        response = self.request(
            "GET", self.url(f"/v2/{repository}/blobs/{digest}"), ok=(200,), what=f"blob {digest}", stream=True
        )
        with response:
            yield from response.iter_content(_CHUNK)


class SizedBody(Iterator[bytes]):
    """Chunks of a body whose total size is known: requests then sends a Content-Length.

    An iterator, so :meth:`RegistryClient.request` never tries to replay it. Chunks that add up
    to more or fewer bytes than promised raise instead of leaving the registry waiting for bytes
    that never come (or cutting the blob short).
    """

    def __init__(self, chunks: Iterable[bytes], size: int) -> None:
        self._chunks = iter(chunks)
        self._size = size
        self._sent = 0

    def __len__(self) -> int:
        return self._size

    def __next__(self) -> bytes:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            if self._sent != self._size:
                raise self._mismatch() from None
            raise
        self._sent += len(chunk)
        if self._sent > self._size:
            raise self._mismatch()
        return chunk

    def _mismatch(self) -> ConflictError:
        what = "went past that" if self._sent > self._size else f"ended after {self._sent}"
        return ConflictError(
            f"a blob announced as {self._size} bytes {what}",
            hint="do not modify the package while building; run the build again",
        )


def _error_detail(response: requests.Response) -> str:
    try:
        errors = response.json().get("errors", [])
    except ValueError:
        return ""
    messages = [f"{error.get('code')}: {error.get('message')}" for error in errors if isinstance(error, dict)]
    return f" ({'; '.join(messages)})" if messages else ""
