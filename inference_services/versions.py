"""KServe versions: parsing them and knowing which features each one has."""

from __future__ import annotations

import re
from functools import total_ordering

from serving_core.errors import InvalidInputError

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")

OLDEST_SUPPORTED = "0.14"
NEWEST_SUPPORTED = "0.21"


@total_ordering
class KServeVersion:
    """A KServe release as ``major.minor[.patch]``; ordered by its numbers."""

    def __init__(self, major: int, minor: int, patch: int = 0) -> None:
        """Keep the numeric parts."""
        self.parts = (major, minor, patch)

    @classmethod
    def parse(cls, text: str) -> KServeVersion:
        """Read ``0.20``, ``0.20.0`` or ``v0.20.0``.

        Raises:
            InvalidInputError: the text is not a version number.
        """
        match = _VERSION.match(text.strip())
        if match is None:
            raise InvalidInputError(
                f"KServe version {text!r} is not a version number", hint="write it like 0.20 or v0.20.0"
            )
        return cls(int(match[1]), int(match[2]), int(match[3] or 0))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KServeVersion) and self.parts == other.parts

    def __lt__(self, other: KServeVersion) -> bool:
        return self.parts < other.parts

    def __hash__(self) -> int:
        return hash(self.parts)

    def __str__(self) -> str:
        major, minor, patch = self.parts
        return f"{major}.{minor}" if patch == 0 else f"{major}.{minor}.{patch}"

    def __repr__(self) -> str:
        return f"KServeVersion({self})"


def supported_version(text: str) -> KServeVersion:
    """Parse a target version and check that the project supports it.

    Raises:
        InvalidInputError: not a version, or outside 0.14-0.21.
    """
    version = KServeVersion.parse(text)
    if not KServeVersion.parse(OLDEST_SUPPORTED) <= version < KServeVersion.parse("0.22"):
        raise InvalidInputError(
            f"KServe version {version} is outside the supported range {OLDEST_SUPPORTED}-{NEWEST_SUPPORTED}",
            hint=f"target a KServe release between {OLDEST_SUPPORTED} and {NEWEST_SUPPORTED}",
        )
    return version
