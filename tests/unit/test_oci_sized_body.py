"""The body of a sized upload: passes its chunks through and refuses to send more or fewer bytes than announced."""

from __future__ import annotations

import pytest

from oci_images.registry import SizedBody
from serving_core.errors import ConflictError


def test_chunks_pass_through_and_the_length_is_the_announced_size() -> None:
    body = SizedBody([b"ab", b"cde"], 5)
    assert len(body) == 5
    assert list(body) == [b"ab", b"cde"]


def test_a_body_shorter_than_announced_fails_at_its_end() -> None:
    body = SizedBody([b"ab", b"cd"], 5)
    assert next(body) == b"ab"
    assert next(body) == b"cd"
    with pytest.raises(ConflictError, match="announced as 5 bytes ended after 4"):
        next(body)


def test_a_body_longer_than_announced_fails_before_the_extra_bytes_go_out() -> None:
    body = SizedBody([b"abc", b"def"], 5)
    assert next(body) == b"abc"
    with pytest.raises(ConflictError, match="announced as 5 bytes went past that"):
        next(body)
