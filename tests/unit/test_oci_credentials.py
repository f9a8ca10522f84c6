"""Registry credentials from docker config.json / dockerconfigjson secrets and the environment."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from oci_images.auth import basic_authorization, parse_challenge
from oci_images.credentials import Credentials, load_credentials
from serving_core.errors import InvalidInputError


def write(path: Path, document: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_secret_mount_directory_with_dockerconfigjson(tmp_path: Path) -> None:
    write(
        tmp_path / "secret" / ".dockerconfigjson",
        {"auths": {"https://reg.example.com:5000/v1/": {"auth": auth("u", "p:w")}}},
    )
    store = load_credentials(tmp_path / "secret", environ={})
    assert store.lookup("reg.example.com:5000") == Credentials(
        source=f"{tmp_path / 'secret' / '.dockerconfigjson'} (https://reg.example.com:5000/v1/)",
        username="u",
        password="p:w",
    )
    assert store.lookup("other.example.com") is None


def test_lookup_order_and_docker_hub_aliases(tmp_path: Path) -> None:
    auth_file = write(tmp_path / "auth.json", {"auths": {"index.docker.io": {"username": "hub", "password": "x"}}})
    docker_config = write(tmp_path / "docker" / "config.json", {"auths": {"reg": {"identitytoken": "tok"}}})
    environ = {"REGISTRY_AUTH_FILE": str(auth_file), "DOCKER_CONFIG": str(docker_config.parent)}
    store = load_credentials(environ=environ)
    hub = store.lookup("docker.io")
    assert hub is not None
    assert hub.username == "hub"
    assert store.lookup("reg") is None  # REGISTRY_AUTH_FILE wins over DOCKER_CONFIG
    only_docker = load_credentials(environ={"DOCKER_CONFIG": str(docker_config.parent)})
    token = only_docker.lookup("reg")
    assert token is not None
    assert token.identity_token == "tok"


def test_environment_credentials_only_for_the_push_registry(tmp_path: Path) -> None:
    environ = {"AISERVING_REGISTRY_USERNAME": "ci", "AISERVING_REGISTRY_PASSWORD": "pw", "HOME": str(tmp_path)}
    store = load_credentials(push_host="push.example.com", environ=environ)
    assert store.lookup("push.example.com") == Credentials("$AISERVING_REGISTRY_USERNAME", "ci", "pw")
    assert store.lookup("docker.io") is None
    with pytest.raises(InvalidInputError, match="only one of AISERVING_REGISTRY_USERNAME and"):
        load_credentials(environ={"AISERVING_REGISTRY_USERNAME": "ci"})


def test_bad_configs_are_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"is neither a config\.json file nor a directory"):
        load_credentials(tmp_path / "missing", environ={})
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(InvalidInputError, match="cannot be read as JSON"):
        load_credentials(broken, environ={})
    bad_auth = write(tmp_path / "bad.json", {"auths": {"reg": {"auth": "%%%"}}})
    with pytest.raises(InvalidInputError, match="the auth of 'reg' is not base64 of USER:PASSWORD"):
        load_credentials(bad_auth, environ={})


def test_challenge_parsing_and_basic_header() -> None:
    challenge = parse_challenge(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:models/fraud:pull,push"'
    )
    assert challenge.scheme == "bearer"
    assert challenge.parameters == {
        "realm": "https://auth.example.com/token",
        "service": "registry.example.com",
        "scope": "repository:models/fraud:pull,push",
    }
    assert parse_challenge('Basic realm="r"').scheme == "basic"
    assert basic_authorization(Credentials("s", "u", "p")) == "Basic " + auth("u", "p")
