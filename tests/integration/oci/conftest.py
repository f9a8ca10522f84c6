"""Real registries for the image tests: one plain on 127.0.0.1, one with basic auth + TLS, plus a busybox base."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aiserving.local.busybox_base import push_busybox_base
from aiserving.local.registry import LocalRegistry
from tests.support.oci import dockerconfigjson, make_package, make_tls, write_htpasswd
from tests.support.token_server import TokenServer
from tests.support.tools import require_tools

USER, PASSWORD = "pusher", "s3cret-pw"
READER = "reader"


@pytest.fixture(scope="session", autouse=True)
def digest_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep the layer digest cache of the tests away from the user's."""
    directory = tmp_path_factory.mktemp("digest-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AISERVING_CACHE_DIR", str(directory))
        yield directory


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    require_tools("docker-registry")
    with LocalRegistry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@dataclass(frozen=True)
class SecureRegistry:
    registry: LocalRegistry
    ca_file: Path
    secret_dir: Path  # a mounted kubernetes.io/dockerconfigjson secret
    cert_dir: Path  # for skopeo --cert-dir

    @property
    def host(self) -> str:
        return self.registry.host


@pytest.fixture(scope="session")
def secure_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureRegistry]:
    require_tools("docker-registry")
    state = tmp_path_factory.mktemp("secure-registry")
    ca_file, cert, key = make_tls(state / "tls")
    htpasswd = write_htpasswd(state / "htpasswd", USER, PASSWORD)
    with LocalRegistry(state / "registry", htpasswd=htpasswd, tls=(cert, key)) as running:
        secret_dir = state / "secret"
        secret_dir.mkdir()
        (secret_dir / ".dockerconfigjson").write_text(dockerconfigjson(running.host, USER, PASSWORD))
        cert_dir = state / "certs"
        cert_dir.mkdir()
        shutil.copy(ca_file, cert_dir / "ca.crt")
        yield SecureRegistry(running, ca_file, secret_dir, cert_dir)


@dataclass(frozen=True)
class TokenRegistry:
    registry: LocalRegistry
    tokens: TokenServer
    config: Path  # a docker config.json with the token service's user

    @property
    def host(self) -> str:
        return self.registry.host


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistry]:
    """A registry in bearer-token mode, trusting a token service that signs RS256 JWTs."""
    require_tools("docker-registry")
    state = tmp_path_factory.mktemp("token-registry")
    tokens = TokenServer(state / "tokens", USER, PASSWORD, reader=(READER, PASSWORD))
    with tokens, LocalRegistry(state / "registry", token=tokens.auth) as running:
        config = state / "docker" / "config.json"
        config.parent.mkdir()
        config.write_text(dockerconfigjson(running.host, USER, PASSWORD))
        yield TokenRegistry(running, tokens, config)


@pytest.fixture(scope="session")
def busybox_base(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A busybox image made from Debian's busybox-static, pushed with our own library; returns REPO@digest."""
    require_tools("busybox")
    return push_busybox_base(f"{registry.host}/base/busybox:1", tmp_path_factory.mktemp("busybox"))


@pytest.fixture
def package(tmp_path: Path) -> Path:
    return make_package(tmp_path / "package")
