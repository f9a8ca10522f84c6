"""A real ``docker-registry`` (distribution 2.8) on 127.0.0.1 with a config written here.

Debian's default ``/etc/docker/registry/config.yml`` enables htpasswd with a directory as
its path and binds to every interface, so it is never used: each instance gets its own
filesystem storage, address, and optionally htpasswd auth, TLS or token auth.
"""

from __future__ import annotations

import re
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from serving_core.processes import LocalProcess, announced_port, launch_and_wait, log_size

# "listening on 127.0.0.1:NNNN" (", tls" follows with TLS on); distribution logs it at info level.
_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


@dataclass(frozen=True)
class TokenAuth:
    """Bearer-token auth: the registry trusts tokens signed by a key whose certificate is in ``root_cert``."""

    realm: str
    service: str
    issuer: str
    root_cert: Path


class LocalRegistry(LocalProcess):
    """Run ``docker-registry serve`` until closed.

    Args:
        state_dir: storage and config live here.
        htpasswd: a bcrypt htpasswd file turns basic auth on.
        tls: (certificate, key) PEM files turn TLS on.
        token: bearer-token auth settings.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        htpasswd: Path | None = None,
        tls: tuple[Path, Path] | None = None,
        token: TokenAuth | None = None,
        startup_timeout_s: float = 30.0,
    ) -> None:
        self.state_dir = state_dir.absolute()
        self.port = 0  # the port the kernel gave; known once started
        self.htpasswd = htpasswd
        self.tls = tls
        self.token = token
        self.startup_timeout_s = startup_timeout_s

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``, as used in image references."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Base URL of the API."""
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def pid(self) -> int | None:
        """Process id of the running registry (for CPU accounting in benchmarks)."""
        return self._process.pid if self._process else None

    def config(self) -> dict[str, Any]:
        """The registry configuration this instance runs with."""
        http: dict[str, Any] = {"addr": "127.0.0.1:0", "secret": secrets.token_hex(16)}
        if self.tls:
            http["tls"] = {"certificate": str(self.tls[0]), "key": str(self.tls[1])}
        config: dict[str, Any] = {
            "version": 0.1,
            # info: the level of the line that says which port was bound; it also logs one line per request.
            "log": {"level": "info"},
            "storage": {"filesystem": {"rootdirectory": str(self.state_dir / "storage")}, "delete": {"enabled": True}},
            "http": http,
        }
        if self.htpasswd:
            config["auth"] = {"htpasswd": {"realm": "aiserving-test", "path": str(self.htpasswd)}}
        elif self.token:
            config["auth"] = {
                "token": {
                    "realm": self.token.realm,
                    "service": self.token.service,
                    "issuer": self.token.issuer,
                    "rootcertbundle": str(self.token.root_cert),
                }
            }
        return config

    def _ready(self) -> bool:
        try:
            # A liveness probe on 127.0.0.1 only: the certificate is checked by the tests themselves.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return requests.get(f"{self.url}/v2/", timeout=2, verify=False).status_code in (200, 401)
        except requests.RequestException:
            return False

    def start(self) -> LocalRegistry:
        """Write the config, start the registry and wait for ``/v2/``."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.state_dir / "config.yml"
        config_path.write_text(yaml.safe_dump(self.config()), encoding="utf-8")
        log_path = self.state_dir / "registry.log"
        new_lines = log_size(log_path)

        def ready() -> bool:
            self.port = announced_port(log_path, _LISTENING, after=new_lines) or 0
            return self.port != 0 and self._ready()

        self._process = launch_and_wait(
            ["docker-registry", "serve", str(config_path)], log_path=log_path, ready=ready,
            what="docker-registry", timeout_s=self.startup_timeout_s,
        )  # fmt: skip
        return self
