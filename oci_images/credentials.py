"""Registry credentials from a docker ``config.json`` (or a ``dockerconfigjson`` secret) or the environment.

Lookup order for the file: ``--registry-config PATH`` (a file, or a directory holding
``config.json`` or ``.dockerconfigjson`` as a mounted Kubernetes secret), then
``$REGISTRY_AUTH_FILE``, then ``$DOCKER_CONFIG/config.json``, then ``~/.docker/config.json``.
``AISERVING_REGISTRY_USERNAME``/``AISERVING_REGISTRY_PASSWORD`` override the file for the
registry that is pushed to, and only for it, so they never travel to a base image's registry.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving_core.errors import InvalidInputError

_LOG = logging.getLogger(__name__)
USERNAME_ENV = "AISERVING_REGISTRY_USERNAME"
PASSWORD_ENV = "AISERVING_REGISTRY_PASSWORD"
HOW_TO_PASS_CREDENTIALS = (
    "pass --registry-config PATH (a docker config.json or a mounted kubernetes.io/dockerconfigjson secret), "
    f"set DOCKER_CONFIG or REGISTRY_AUTH_FILE, or set {USERNAME_ENV} and {PASSWORD_ENV}"
)
_DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class Credentials:
    """What to log in with; ``source`` names where it came from (never the secret itself)."""

    source: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)
    registry_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CredentialStore:
    """Credentials per registry host, read once."""

    entries: Mapping[str, Credentials]
    env_credentials: Credentials | None = None
    env_host: str | None = None

    def lookup(self, host: str) -> Credentials | None:
        """Credentials for ``host`` (``host:port``), or None for anonymous access."""
        if self.env_credentials is not None and self.env_host == host:
            return self.env_credentials
        for alias in _aliases(host):
            if alias in self.entries:
                return self.entries[alias]
        return None


def _aliases(host: str) -> tuple[str, ...]:
    return _DOCKER_HUB_ALIASES if host in _DOCKER_HUB_ALIASES else (host,)


def _normalize_key(key: str) -> str:
    """``https://host:port/v1/`` → ``host:port``, as docker does for its ``auths`` keys."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
    return key.split("/", 1)[0]


def find_config_file(explicit: Path | None, environ: Mapping[str, str]) -> Path | None:
    """The auth file to read, or None when there is none.

    Raises:
        InvalidInputError: ``explicit`` was given but holds no config file.
    """
    if explicit is not None:
        if explicit.is_dir():
            for name in ("config.json", ".dockerconfigjson"):
                if (explicit / name).is_file():
                    return explicit / name
        elif explicit.is_file():
            return explicit
        raise InvalidInputError(
            f"registry config {explicit} is neither a config.json file nor a directory holding "
            "config.json or .dockerconfigjson",
            hint="pass the file (or the secret's mount directory) with the registry credentials",
        )
    candidates = []
    if environ.get("REGISTRY_AUTH_FILE"):
        candidates.append(Path(environ["REGISTRY_AUTH_FILE"]))
    if environ.get("DOCKER_CONFIG"):
        candidates.append(Path(environ["DOCKER_CONFIG"]) / "config.json")
    candidates.append(Path.home() / ".docker" / "config.json")
    return next((path for path in candidates if path.is_file()), None)


def _entry_credentials(key: str, entry: Any, source: str) -> Credentials:
    if not isinstance(entry, dict):
        raise InvalidInputError(f"registry config {source}: entry {key!r} is not an object")
    username, password = entry.get("username"), entry.get("password")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(entry["auth"], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, TypeError) as error:
            raise InvalidInputError(
                f"registry config {source}: the auth of {key!r} is not base64 of USER:PASSWORD",
                hint="write it as base64 of 'user:password' (what docker login stores)",
            ) from error
        username, _, password = decoded.partition(":")
    return Credentials(
        source=f"{source} ({key})",
        username=username or None,
        password=password or None,
        identity_token=entry.get("identitytoken") or None,
        registry_token=entry.get("registrytoken") or None,
    )


def parse_config(document: Any, source: str) -> dict[str, Credentials]:
    """Read the ``auths`` of a docker config.json or dockerconfigjson secret into host → credentials.

    Raises:
        InvalidInputError: the document is not a docker auth config.
    """
    if not isinstance(document, dict) or not isinstance(document.get("auths", {}), dict):
        raise InvalidInputError(
            f"registry config {source} is not a docker config.json",
            hint='expected {"auths": {"registry.example.com": {"auth": "<base64 user:password>"}}}',
        )
    entries = {
        _normalize_key(key): _entry_credentials(key, entry, source) for key, entry in document.get("auths", {}).items()
    }
    for host in {**document.get("credHelpers", {})}:
        if _normalize_key(host) not in entries:
            _LOG.warning("registry config %s: credential helpers are not supported (host %s)", source, host)
    return entries


def load_credentials(
    explicit_config: Path | None = None, *, push_host: str | None = None, environ: Mapping[str, str] | None = None
) -> CredentialStore:
    """Read the credentials for this build.

    Raises:
        InvalidInputError: the config file is unreadable or malformed, or only one of the two
            environment variables is set.
    """
    environ = os.environ if environ is None else environ
    path = find_config_file(explicit_config, environ)
    entries: dict[str, Credentials] = {}
    if path is not None:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise InvalidInputError(
                f"registry config {path} cannot be read as JSON: {error}", hint="fix or remove the file"
            ) from error
        entries = parse_config(document, str(path))
    username, password = environ.get(USERNAME_ENV), environ.get(PASSWORD_ENV)
    if bool(username) != bool(password):
        raise InvalidInputError(f"only one of {USERNAME_ENV} and {PASSWORD_ENV} is set", hint="set both, or neither")
    env_credentials = Credentials(f"${USERNAME_ENV}", username, password) if username else None
    return CredentialStore(entries, env_credentials, push_host)
