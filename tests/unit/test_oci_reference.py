"""Image reference parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from oci_images.reference import LayoutReference, RegistryReference, parse_reference
from serving_core.errors import InvalidInputError

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "registry.example.com:5000/models/fraud:v7",
            RegistryReference("registry.example.com:5000", "models/fraud", "v7"),
        ),
        ("127.0.0.1:5000/m", RegistryReference("127.0.0.1:5000", "m")),
        ("localhost/a/b@" + DIGEST, RegistryReference("localhost", "a/b", None, DIGEST)),
        ("ghcr.io/o/r:t@" + DIGEST, RegistryReference("ghcr.io", "o/r", "t", DIGEST)),
        ("busybox:1.37.0", RegistryReference("docker.io", "library/busybox", "1.37.0")),
        ("kserve/modelcar", RegistryReference("docker.io", "kserve/modelcar")),
        ("oci-layout:/tmp/out", LayoutReference(Path("/tmp/out"))),
        ("oci-layout:/tmp/out:v7", LayoutReference(Path("/tmp/out"), "v7")),
        ("oci-layout:rel/dir@" + DIGEST, LayoutReference(Path("rel/dir"), None, DIGEST)),
    ],
)
def test_parse(text: str, expected: object) -> None:
    assert parse_reference(text) == expected


def test_round_trip_and_pinning() -> None:
    reference = parse_reference("registry.example.com:5000/models/fraud:v7")
    assert str(reference) == "registry.example.com:5000/models/fraud:v7"
    assert str(reference.with_digest(DIGEST)) == f"registry.example.com:5000/models/fraud@{DIGEST}"
    assert isinstance(reference, RegistryReference)
    assert reference.manifest_reference == "v7"
    assert parse_reference("busybox").api_host == "registry-1.docker.io"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("registry.example.com/Models/Fraud:v7", "invalid repository 'Models/Fraud'"),
        ("registry.example.com/models:bad/tag", "invalid repository"),
        ("registry.example.com/m:t@sha256:short", "is not sha256:<64 hex digits>"),
        ("registry.example.com/m:-bad", "invalid tag '-bad'"),
        ("oci-layout:", "names no directory"),
    ],
)
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_reference(text)
