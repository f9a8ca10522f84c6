"""Image references: ``REGISTRY/REPO[:TAG][@DIGEST]`` and ``oci-layout:PATH[:TAG]``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from serving_core.errors import InvalidInputError

OCI_LAYOUT_PREFIX = "oci-layout:"
DOCKER_HUB = "docker.io"
_DOCKER_HUB_API = "registry-1.docker.io"
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_FORMAT_HINT = "use REGISTRY/REPOSITORY:TAG (e.g. registry.example.com:5000/models/fraud:v7) or oci-layout:PATH[:TAG]"


@dataclass(frozen=True)
class RegistryReference:
    """An image in a registry: host[:port], repository, and a tag and/or digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def api_host(self) -> str:
        """Host to talk to; Docker Hub's API lives on another name than its references."""
        return _DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def manifest_reference(self) -> str:
        """The digest when pinned, else the tag (``latest`` when neither was given)."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> RegistryReference:
        """The same repository pinned to ``digest`` (the tag is dropped)."""
        return RegistryReference(self.registry, self.repository, None, digest)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


@dataclass(frozen=True)
class LayoutReference:
    """An image in an OCI image layout directory, named by its ``ref.name`` tag."""

    path: Path
    tag: str | None = None
    digest: str | None = None

    def with_digest(self, digest: str) -> LayoutReference:
        """The same layout pinned to ``digest``."""
        return LayoutReference(self.path, None, digest)

    def __str__(self) -> str:
        text = f"{OCI_LAYOUT_PREFIX}{self.path}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


ImageReference = RegistryReference | LayoutReference


def parse_reference(text: str) -> ImageReference:
    """Parse an image reference given on the command line or to the library.

    Raises:
        InvalidInputError: the text is not a valid reference.
    """
    text = text.strip()
    if text.startswith(OCI_LAYOUT_PREFIX):
        return _parse_layout(text[len(OCI_LAYOUT_PREFIX) :], text)
    return _parse_registry(text)


def _split_digest(text: str, original: str) -> tuple[str, str | None]:
    if "@" not in text:
        return text, None
    name, digest = text.rsplit("@", 1)
    if not _DIGEST.match(digest):
        raise InvalidInputError(
            f"image reference {original!r} has digest {digest!r}, which is not sha256:<64 hex digits>",
            hint=_FORMAT_HINT,
        )
    return name, digest


def _parse_layout(rest: str, original: str) -> LayoutReference:
    rest, digest = _split_digest(rest, original)
    path_text, tag = rest, None
    # A tag follows the last ":" only when it cannot be part of the path itself.
    if ":" in rest:
        candidate_path, candidate_tag = rest.rsplit(":", 1)
        if _TAG.match(candidate_tag) and "/" not in candidate_tag:
            path_text, tag = candidate_path, candidate_tag
    if not path_text:
        raise InvalidInputError(f"image reference {original!r} names no directory", hint=_FORMAT_HINT)
    return LayoutReference(Path(path_text), tag, digest)


def _parse_registry(text: str) -> RegistryReference:
    original = text
    rest, digest = _split_digest(text, original)
    tag = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.match(tag):
            raise InvalidInputError(f"image reference {original!r} has an invalid tag {tag!r}", hint=_FORMAT_HINT)
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, remainder
    else:
        registry, repository = DOCKER_HUB, rest
        if "/" not in repository:
            repository = f"library/{repository}"
    if not repository or not _REPOSITORY.match(repository):
        raise InvalidInputError(
            f"image reference {original!r} has an invalid repository {repository!r} "
            "(lowercase letters, digits and . _ - separators)",
            hint=_FORMAT_HINT,
        )
    return RegistryReference(registry, repository, tag, digest)
