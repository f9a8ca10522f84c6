"""Answer a registry's ``WWW-Authenticate`` challenge: basic, or a bearer token from its realm."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import requests

from oci_images.credentials import HOW_TO_PASS_CREDENTIALS, Credentials
from serving_core.errors import PermissionDeniedError, UnreachableError

_PARAMETER = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` header."""

    scheme: str
    parameters: dict[str, str]


def parse_challenge(header: str) -> Challenge:
    """Parse ``Bearer realm="…",service="…",scope="…"`` (or ``Basic realm="…"``)."""
    scheme, _, rest = header.strip().partition(" ")
    return Challenge(scheme.lower(), dict(_PARAMETER.findall(rest)))


def basic_authorization(credentials: Credentials) -> str:
    """The ``Authorization`` header value for basic auth."""
    pair = f"{credentials.username or ''}:{credentials.password or ''}".encode()
    return f"Basic {base64.b64encode(pair).decode('ascii')}"


def _missing_credentials(host: str) -> PermissionDeniedError:
    return PermissionDeniedError(
        f"registry {host} requires authentication and no credentials for {host} were found",
        hint=HOW_TO_PASS_CREDENTIALS,
    )


def authorization_for(
    challenge: Challenge,
    *,
    host: str,
    credentials: Credentials | None,
    scopes: list[str],
    session: requests.Session,
    verify: str | bool,
    timeout_s: float,
) -> str:
    """Produce the ``Authorization`` header that answers ``challenge`` for ``scopes``.

    Raises:
        PermissionDeniedError: no credentials where they are needed, or the token service refused them.
        UnreachableError: the token service cannot be reached.
    """
    if challenge.scheme == "basic":
        if credentials is None or credentials.username is None:
            raise _missing_credentials(host)
        return basic_authorization(credentials)
    if challenge.scheme != "bearer" or "realm" not in challenge.parameters:
        raise PermissionDeniedError(
            f"registry {host} asks for an authentication scheme we do not speak: {challenge.scheme!r}",
            hint="use a registry with basic or bearer-token authentication",
        )
    if credentials is not None and credentials.registry_token:
        return f"Bearer {credentials.registry_token}"
    realm = challenge.parameters["realm"]
    wanted = sorted({*scopes, *filter(None, [challenge.parameters.get("scope")])})
    service = challenge.parameters.get("service")
    try:
        if credentials is not None and credentials.identity_token:
            response = session.post(
                realm,
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": credentials.identity_token,
                    "service": service or "",
                    "scope": " ".join(wanted),
                    "client_id": "aiserving",
                },
                timeout=timeout_s,
                verify=verify,
            )
        else:
            basic = (credentials.username or "", credentials.password or "") if credentials else None
            params: list[tuple[str, str]] = [("scope", scope) for scope in wanted]
            if service:
                params.insert(0, ("service", service))
            response = session.get(realm, params=params, auth=basic, timeout=timeout_s, verify=verify)
    except requests.RequestException as error:
        raise UnreachableError(
            f"the token service {realm} of registry {host} cannot be reached: {error}",
            hint="check that the registry's token realm is reachable from here",
        ) from error
    if response.status_code in (401, 403):
        if credentials is None:
            raise _missing_credentials(host)
        raise PermissionDeniedError(
            f"the token service of registry {host} refused the credentials from {credentials.source} "
            f"for {', '.join(wanted)} (HTTP {response.status_code})",
            hint=HOW_TO_PASS_CREDENTIALS,
        )
    if not response.ok:
        raise PermissionDeniedError(
            f"the token service {realm} of registry {host} answered HTTP {response.status_code}",
            hint="check the registry's token service",
        )
    document = response.json()
    token = document.get("token") or document.get("access_token")
    if not token:
        raise PermissionDeniedError(f"the token service {realm} of registry {host} returned no token")
    return f"Bearer {token}"
