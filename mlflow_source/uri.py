"""Parse ``models:/`` URIs: by version, by alias, or the latest version."""

from __future__ import annotations

import re
from dataclasses import dataclass

from serving_core.errors import InvalidInputError

ACCEPTED_FORMS = "models:/NAME/VERSION, models:/NAME@ALIAS or models:/NAME/latest"

# MLflow allows almost any name; '/' and '@' would make the URI ambiguous.
_NAME = r"[^/@\s]+"
_BY_VERSION = re.compile(rf"^models:/(?P<name>{_NAME})/(?P<version>[1-9][0-9]*|latest)$")
_BY_ALIAS = re.compile(rf"^models:/(?P<name>{_NAME})@(?P<alias>[A-Za-z0-9_\-]+)$")


@dataclass(frozen=True)
class ModelUri:
    """A registered model reference: exactly one of version, alias or latest."""

    name: str
    version: str | None = None
    alias: str | None = None

    @property
    def is_latest(self) -> bool:
        """Whether the URI asks for the newest registered version."""
        return self.version is None and self.alias is None

    @classmethod
    def parse(cls, uri: str) -> ModelUri:
        """Parse a URI in one of the accepted forms.

        Raises:
            InvalidInputError: the URI is in none of the accepted forms.
        """
        text = uri.strip()
        if match := _BY_ALIAS.match(text):
            return cls(name=match["name"], alias=match["alias"])
        if match := _BY_VERSION.match(text):
            version = match["version"]
            return cls(name=match["name"], version=None if version == "latest" else version)
        raise InvalidInputError(
            f"malformed model URI {uri!r}",
            hint=f"use one of: {ACCEPTED_FORMS} (for example models:/fraud-detector@champion)",
        )

    def __str__(self) -> str:
        """Render the URI back in its canonical form."""
        if self.alias is not None:
            return f"models:/{self.name}@{self.alias}"
        return f"models:/{self.name}/{self.version or 'latest'}"
