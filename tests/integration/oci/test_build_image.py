"""aiserving build-image against a real docker-registry, checked with skopeo and KServe's storage initializer."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from kserve_storage import Storage

from aiserving.local.registry import LocalRegistry
from oci_images import build_image
from oci_images.registry import RegistryClient
from tests.conftest import REPO_ROOT
from tests.integration.oci.conftest import SecureRegistry, TokenRegistry
from tests.support.oci import dockerconfigjson, make_package, skopeo, skopeo_json, snapshot
from tests.support.ports import port_of, refusing_socket
from tests.support.tools import require_tools


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "aiserving", *args], capture_output=True, text=True, env=environment, timeout=300
    )


def kserve_fetch(
    uri: str, out_dir: Path, monkeypatch: pytest.MonkeyPatch, docker_config: Path | None = None, **env: str
) -> Path:
    """Run KServe's storage initializer the way oci+fetch:// does (the webhook rewrites it to oci://)."""
    monkeypatch.setenv("KSERVE_OCI_DOCKER_CONFIG", str(docker_config or out_dir.parent / "no-such-config.json"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    Storage._download_oci(uri, str(out_dir))
    return out_dir


@pytest.fixture(autouse=True)
def _tools() -> None:
    require_tools("docker-registry", "skopeo")


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_modelcar_push_is_readable_by_skopeo_and_kserve(
    compression: str,
    registry: LocalRegistry,
    busybox_base: str,
    package: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = f"{registry.host}/models/fraud:v7-{compression}"
    result = run_cli(
        "build-image",
        str(package),
        "--image",
        image,
        "--base-image",
        busybox_base,
        "--insecure",
        "--compression",
        compression,
        "--layer-threshold",
        "100K",  # model.onnx (300 kB) gets a layer of its own
    )
    assert result.returncode == 0, result.stderr
    pinned = result.stdout.strip()
    assert pinned.startswith(f"{registry.host}/models/fraud@sha256:")
    digest = pinned.split("@", 1)[1]

    raw = skopeo_json("inspect", "--tls-verify=false", "--raw", f"docker://{image}")
    base_raw = skopeo_json("inspect", "--tls-verify=false", "--raw", f"docker://{busybox_base}")
    assert raw["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    layers = raw["layers"]
    assert isinstance(layers, list)
    assert [layer["digest"] for layer in layers[:-2]] == [layer["digest"] for layer in base_raw["layers"]]
    expected_type = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compression == "gzip" else "")
    assert [layer["mediaType"] for layer in layers[-2:]] == [expected_type, expected_type]
    assert [layer["annotations"] for layer in layers[-2:]] == [
        {
            "ai.creativeflow.layer.kind": "file",
            "ai.creativeflow.layer.file": "/models/fraud/1/model.onnx",
            "ai.creativeflow.layer.file-count": "1",
        },
        {"ai.creativeflow.layer.kind": "small-files", "ai.creativeflow.layer.file-count": "6"},
    ]
    assert raw["annotations"] == {
        "org.opencontainers.image.base.digest": busybox_base.split("@", 1)[1],
        "org.opencontainers.image.base.name": busybox_base,
        "org.opencontainers.image.created": "1970-01-01T00:00:00Z",
    }
    inspected = skopeo_json("inspect", "--tls-verify=false", f"docker://{image}")
    assert inspected["Digest"] == digest

    config = skopeo_json("inspect", "--tls-verify=false", "--config", "--raw", f"docker://{image}")
    base_config = skopeo_json("inspect", "--tls-verify=false", "--config", "--raw", f"docker://{busybox_base}")
    assert config["rootfs"]["diff_ids"][:-2] == base_config["rootfs"]["diff_ids"]  # type: ignore[index]
    if compression == "none":
        assert config["rootfs"]["diff_ids"][-2:] == [layer["digest"] for layer in layers[-2:]]  # type: ignore[index]
    assert config["config"]["Cmd"] == ["sh"]  # type: ignore[index]
    copy = "aiserving build-image --format modelcar: COPY package /models"
    assert config["history"][-2:] == [  # type: ignore[index]
        {"created": "1970-01-01T00:00:00Z", "created_by": f"{copy} (/models/fraud/1/model.onnx)"},
        {"created": "1970-01-01T00:00:00Z", "created_by": f"{copy} (6 files, directories, symlinks)"},
    ]
    assert config["config"]["Labels"] == {  # type: ignore[index]
        "ai.creativeflow.image.format": "modelcar",
        "ai.creativeflow.model.aliases": "champion",
        "ai.creativeflow.model.content-digest": "sha256:" + "cd" * 32,
        "ai.creativeflow.model.model-id": "m-42",
        "ai.creativeflow.model.name": "fraud-detector",
        "ai.creativeflow.model.requested-uri": "models:/fraud-detector@champion",
        "ai.creativeflow.model.run-id": "0123abcd",
        "ai.creativeflow.model.source": "models:/m-42",
        "ai.creativeflow.model.version": "7",
        "ai.creativeflow.package.digest": "sha256:" + "ab" * 32,
        "ai.creativeflow.package.model-format": "onnx",
        "ai.creativeflow.package.model-format-version": "1",
        "ai.creativeflow.package.protocol": "v2",
        "ai.creativeflow.package.runtime": "triton",
        "org.opencontainers.image.base.digest": busybox_base.split("@", 1)[1],
        "org.opencontainers.image.base.name": busybox_base,
        "org.opencontainers.image.description": "modelcar image of model fraud-detector version 7",
        "org.opencontainers.image.revision": "0123abcd",
        "org.opencontainers.image.source": "models:/m-42",
        "org.opencontainers.image.title": "fraud-detector",
        "org.opencontainers.image.version": "7",
    }

    extracted = kserve_fetch(
        f"oci://{pinned}", tmp_path / "mnt-models", monkeypatch, KSERVE_OCI_INSECURE_REGISTRY="true"
    )
    assert snapshot(extracted) == snapshot(package)


def test_rebuild_is_reproducible_and_repush_reuses_the_layer(
    registry: LocalRegistry, busybox_base: str, tmp_path: Path
) -> None:
    package = make_package(tmp_path / "pkg", weights=b"\x01" * 1000)
    first = build_image(package, f"{registry.host}/models/repro:a", base_image=busybox_base, insecure=True)
    assert not first.reused
    again = build_image(package, f"{registry.host}/models/repro:a", base_image=busybox_base, insecure=True)
    assert again.reused
    assert again.bytes_sent == 0
    assert again.digest == first.digest

    # A copy of the tree elsewhere (other inodes, mtimes) misses the cache but gives the same bytes.
    copy = make_package(tmp_path / "copy", weights=b"\x01" * 1000)
    copied = build_image(copy, f"{registry.host}/models/repro-copy:b", base_image=busybox_base, insecure=True)
    assert not copied.reused
    assert copied.layers[0].layer.digest == first.layers[0].layer.digest
    # the image is a function of the content: the same manifest digest
    assert copied.digest == first.digest

    # Same size, same mtime, new content: ctime moves, so the stale digest is never reused.
    weights = package / "fraud" / "1" / "model.onnx"
    stat_before = weights.stat()
    weights.write_bytes(b"\x02" * 1000)
    os.utime(weights, ns=(stat_before.st_atime_ns, stat_before.st_mtime_ns))
    changed = build_image(package, f"{registry.host}/models/repro:a", base_image=busybox_base, insecure=True)
    assert not changed.reused
    assert changed.layers[0].layer.digest != first.layers[0].layer.digest


def test_base_layers_are_mounted_across_repositories(registry: LocalRegistry, busybox_base: str, package: Path) -> None:
    log = registry.state_dir / "registry.log"
    mark = log.stat().st_size
    result = build_image(package, f"{registry.host}/team-b/fraud:v1", base_image=busybox_base, insecure=True)
    requests_seen = log.read_bytes()[mark:].decode()
    base_layer = json.loads(skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{busybox_base}").stdout)[
        "layers"
    ][0]["digest"]
    mount = f"POST /v2/team-b/fraud/blobs/uploads/?mount={base_layer.replace(':', '%3A')}&from=base%2Fbusybox "
    assert mount + 'HTTP/1.1" 201' in requests_seen
    committed = set(re.findall(r"PUT /v2/team-b/fraud/blobs/uploads/\S*digest=(sha256:[0-9a-f]{64})", requests_seen))
    # the base layer was never uploaded
    assert committed == {item.layer.digest for item in result.layers} | {result.config_digest}
    assert result.base_digest == busybox_base.split("@", 1)[1]


def test_oci_layout_output_copies_with_skopeo(registry: LocalRegistry, package: Path, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    result = run_cli("build-image", str(package), "--image", f"oci-layout:{layout}:v7", "--base-image", "scratch")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(f"oci-layout:{layout}@sha256:")
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    assert [entry["annotations"] for entry in index["manifests"]] == [{"org.opencontainers.image.ref.name": "v7"}]

    copied = skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v7", f"docker://{registry.host}/from-layout/m:v7")
    assert copied.returncode == 0, copied.stderr
    inspected = skopeo_json(
        "inspect", "--tls-verify=false", "--config", "--raw", f"docker://{registry.host}/from-layout/m:v7"
    )
    assert inspected["rootfs"]["diff_ids"] == [  # type: ignore[index]
        json.loads(Path(layout / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":")[1]).read_text())[
            "layers"
        ][0]["digest"]
    ]


def test_index_base_selects_the_platform(registry: LocalRegistry, busybox_base: str, package: Path) -> None:
    client = RegistryClient(registry.host, insecure=True)
    repository, digest = busybox_base.split("/", 1)[1].split("@")
    amd64_body, media_type = client.get_manifest(repository, digest)
    arm_image = build_image(
        package, f"{registry.host}/base/arm:1", base_image="scratch", platform="linux/arm64/v8", insecure=True
    )
    arm_repo_body, _ = client.get_manifest("base/arm", arm_image.digest)
    # put the arm64 manifest's blobs next to the amd64 ones, then an index over both
    for layer in json.loads(arm_repo_body)["layers"] + [json.loads(arm_repo_body)["config"]]:
        assert client.mount_blob(repository, layer["digest"], "base/arm")
    client.put_manifest(repository, arm_image.digest, arm_repo_body, "application/vnd.oci.image.manifest.v1+json")
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": media_type,
                "digest": digest,
                "size": len(amd64_body),
                "platform": {"os": "linux", "architecture": "amd64"},
            },
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": arm_image.digest,
                "size": len(arm_repo_body),
                "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
            },
        ],
    }
    client.put_manifest(repository, "multi", json.dumps(index).encode(), "application/vnd.oci.image.index.v1+json")

    arm = build_image(
        package,
        f"{registry.host}/models/multi:arm",
        base_image=f"{registry.host}/{repository}:multi",
        platform="linux/arm64",
        insecure=True,
    )
    amd = build_image(
        package,
        f"{registry.host}/models/multi:amd",
        base_image=f"{registry.host}/{repository}:multi",
        platform="linux/amd64",
        insecure=True,
    )
    assert arm.base_digest == arm_image.digest
    assert amd.base_digest == digest
    missing = run_cli(
        "build-image",
        str(package),
        "--image",
        f"{registry.host}/models/multi:s390x",
        "--base-image",
        f"{registry.host}/{repository}:multi",
        "--platform",
        "linux/s390x",
        "--insecure",
    )
    assert missing.returncode == 3
    assert "has no manifest for platform linux/s390x; it has linux/amd64, linux/arm64/v8" in missing.stderr


def test_basic_auth_and_tls_with_a_dockerconfigjson_secret(
    secure_registry: SecureRegistry, package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = f"{secure_registry.host}/private/fraud:v7"
    home = {"HOME": str(tmp_path), "DOCKER_CONFIG": str(tmp_path / "none"), "REGISTRY_AUTH_FILE": ""}

    anonymous = run_cli(
        "build-image",
        str(package),
        "--image",
        image,
        "--base-image",
        "scratch",
        "--ca-file",
        str(secure_registry.ca_file),
        env=home,
    )
    assert anonymous.returncode == 5
    assert f"registry {secure_registry.host} requires authentication and no credentials" in anonymous.stderr
    assert "--registry-config PATH" in anonymous.stderr

    untrusted = run_cli(
        "build-image",
        str(package),
        "--image",
        image,
        "--base-image",
        "scratch",
        "--registry-config",
        str(secure_registry.secret_dir),
        env=home,
    )
    assert untrusted.returncode == 6
    assert "--ca-file PATH" in untrusted.stderr

    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"auths": {secure_registry.host: {"username": "pusher", "password": "nope"}}}))
    refused = run_cli(
        "build-image",
        str(package),
        "--image",
        image,
        "--base-image",
        "scratch",
        "--registry-config",
        str(wrong),
        "--ca-file",
        str(secure_registry.ca_file),
        env=home,
    )
    assert refused.returncode == 5
    assert f"registry {secure_registry.host} refused" in refused.stderr
    assert str(wrong) in refused.stderr

    pushed = run_cli(
        "build-image",
        str(package),
        "--image",
        image,
        "--base-image",
        "scratch",
        "--registry-config",
        str(secure_registry.secret_dir),
        "--ca-file",
        str(secure_registry.ca_file),
        env=home,
    )
    assert pushed.returncode == 0, pushed.stderr
    pinned = pushed.stdout.strip()

    inspected = skopeo_json(
        "inspect", "--cert-dir", str(secure_registry.cert_dir), "--creds", "pusher:s3cret-pw", f"docker://{pinned}"
    )
    assert inspected["Digest"] == pinned.split("@", 1)[1]


def test_environment_credentials_are_used_for_the_push_registry(
    secure_registry: SecureRegistry, package: Path, tmp_path: Path
) -> None:
    env = {
        "HOME": str(tmp_path),
        "DOCKER_CONFIG": str(tmp_path / "none"),
        "AISERVING_REGISTRY_USERNAME": "pusher",
        "AISERVING_REGISTRY_PASSWORD": "s3cret-pw",
    }
    pushed = run_cli(
        "build-image",
        str(package),
        "--image",
        f"{secure_registry.host}/private/env:v1",
        "--base-image",
        "scratch",
        "--ca-file",
        str(secure_registry.ca_file),
        env=env,
    )
    assert pushed.returncode == 0, pushed.stderr


def test_interrupted_push_leaves_no_tag(registry: LocalRegistry, tmp_path: Path) -> None:
    package = tmp_path / "big"
    package.mkdir()
    with (package / "weights.bin").open("wb") as stream:
        stream.truncate(1 << 30)  # sparse: fast to read, slow enough for the registry to write
    command = [
        sys.executable,
        "-m",
        "aiserving",
        "build-image",
        str(package),
        "--image",
        f"{registry.host}/models/interrupted:v1",
        "--base-image",
        "scratch",
        "--insecure",
    ]
    process = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    uploads = registry.state_dir / "storage" / "docker" / "registry" / "v2" / "repositories" / "models" / "interrupted"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        path.stat().st_size > (8 << 20) for path in uploads.glob("_uploads/*/data")
    ):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    response = requests.get(f"{registry.url}/v2/models/interrupted/manifests/v1", timeout=10)
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN")


def test_bad_inputs_fail_with_clear_errors_and_write_nothing(registry: LocalRegistry, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("not for the image")
    escaping = make_package(tmp_path / "escaping")
    (escaping / "leak").symlink_to(outside)
    result = run_cli("build-image", str(escaping), "--image", f"{registry.host}/models/escaping:v1", "--insecure")
    assert result.returncode == 2
    assert f"symlink {escaping / 'leak'} -> {outside} points outside the package directory" in result.stderr
    catalog = requests.get(f"{registry.url}/v2/_catalog", timeout=10).json()["repositories"]
    assert "models/escaping" not in catalog

    with refusing_socket() as refusing:
        unreachable_port = port_of(refusing)
        unreachable = run_cli(
            "build-image",
            str(make_package(tmp_path / "ok")),
            "--image",
            f"127.0.0.1:{unreachable_port}/m:v1",
            "--base-image",
            "scratch",
            "--insecure",
        )
    assert unreachable.returncode == 6
    assert f"registry 127.0.0.1:{unreachable_port} cannot be reached at http://127.0.0.1:{unreachable_port}" in (
        unreachable.stderr
    )

    not_found = run_cli(
        "build-image",
        str(tmp_path / "ok"),
        "--image",
        f"{registry.host}/m:v1",
        "--base-image",
        f"{registry.host}/no/such:base",
        "--insecure",
    )
    assert not_found.returncode == 3
    assert f"base image {registry.host}/no/such:base not found" in not_found.stderr


def test_artifact_base_is_unsupported(registry: LocalRegistry, tmp_path: Path) -> None:
    client = RegistryClient(registry.host, insecure=True)
    config = b"{}"
    client.upload_blob(
        "artifacts/thing", [config], lambda: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.unknown.config.v1+json",
            "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "size": 2,
        },
        "layers": [],
    }
    client.put_manifest("artifacts/thing", "v1", json.dumps(manifest).encode(), manifest["mediaType"])  # type: ignore[arg-type]
    result = run_cli(
        "build-image",
        str(make_package(tmp_path / "p")),
        "--image",
        f"{registry.host}/m:v1",
        "--base-image",
        f"{registry.host}/artifacts/thing:v1",
        "--insecure",
    )
    assert result.returncode == 8
    assert "has config media type 'application/vnd.unknown.config.v1+json'" in result.stderr


def test_bearer_token_flow_with_cross_repository_mount(
    token_registry: TokenRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = token_registry.host
    first_package = make_package(tmp_path / "first")
    anonymous = run_cli(
        "build-image",
        str(first_package),
        "--image",
        f"{host}/team-a/base:v1",
        "--base-image",
        "scratch",
        "--insecure",
        env={"HOME": str(tmp_path), "DOCKER_CONFIG": ""},
    )
    assert anonymous.returncode == 5
    assert f"registry {host} requires authentication and no credentials for {host} were found" in anonymous.stderr

    base = build_image(
        first_package,
        f"{host}/team-a/base:v1",
        base_image="scratch",
        insecure=True,
        registry_config=token_registry.config,
    )
    token_registry.tokens.requests.clear()
    result = build_image(
        make_package(tmp_path / "second"),
        f"{host}/team-b/model:v1",
        base_image=base.pinned,
        insecure=True,
        registry_config=token_registry.config,
    )
    # one token covers pushing to team-b and pulling (and mounting) from team-a
    assert token_registry.tokens.requests[0] == ["repository:team-a/base:pull", "repository:team-b/model:pull,push"]
    reader_config = tmp_path / "reader.json"
    reader_config.write_text(dockerconfigjson(host, "reader", "s3cret-pw"))
    refused = run_cli(
        "build-image",
        str(first_package),
        "--image",
        f"{host}/team-a/base:v2",
        "--base-image",
        "scratch",
        "--insecure",
        "--registry-config",
        str(reader_config),
    )
    assert refused.returncode == 5
    assert f"registry {host} refused pushing manifest team-a/base:v2: HTTP 401 with {reader_config}" in refused.stderr
    assert "AISERVING_REGISTRY_USERNAME" in refused.stderr
    inspected = skopeo_json(
        "inspect", "--tls-verify=false", "--creds", "pusher:s3cret-pw", "--raw", f"docker://{result.pinned}"
    )
    assert inspected["layers"][0]["digest"] == base.layers[0].layer.digest  # type: ignore[index]

    # KServe's storage initializer logs in with the same docker config and fetches through the token flow
    fetched = kserve_fetch(
        f"oci://{result.pinned}",
        tmp_path / "fetched",
        monkeypatch,
        docker_config=token_registry.config,
        KSERVE_OCI_INSECURE_REGISTRY="true",
    )
    assert snapshot(fetched) == snapshot(tmp_path / "second")


def test_base_and_target_can_be_a_registry_or_a_layout(
    registry: LocalRegistry, busybox_base: str, package: Path, tmp_path: Path
) -> None:
    layout = tmp_path / "layout"
    # registry base → layout: the base layers are copied into the layout, digest-checked
    into_layout = build_image(package, f"oci-layout:{layout}:with-base", base_image=busybox_base, insecure=True)
    base_manifest = skopeo_json("inspect", "--tls-verify=false", "--raw", f"docker://{busybox_base}")
    for layer in base_manifest["layers"]:  # type: ignore[attr-defined]
        assert (layout / "blobs" / "sha256" / layer["digest"].split(":")[1]).is_file()
    inspected = skopeo_json("inspect", f"oci:{layout}:with-base")
    assert inspected["Digest"] == into_layout.digest
    assert inspected["Labels"]["org.opencontainers.image.base.name"] == busybox_base  # type: ignore[index]

    # layout base → registry: every blob is uploaded from the layout
    second = make_package(tmp_path / "second")
    from_layout = build_image(
        second,
        f"{registry.host}/models/from-layout-base:v1",
        base_image=f"oci-layout:{layout}:with-base",
        insecure=True,
    )
    raw = skopeo_json("inspect", "--tls-verify=false", "--raw", f"docker://{from_layout.pinned}")
    assert [layer["digest"] for layer in raw["layers"]][:-1] == [  # type: ignore[attr-defined]
        layer["digest"]
        for layer in json.loads(
            b"".join((layout / "blobs" / "sha256" / into_layout.digest.split(":")[1]).read_bytes().splitlines())
        )["layers"]
    ]


def test_predictor_points_the_server_at_models(registry: LocalRegistry, busybox_base: str, package: Path) -> None:
    # busybox stands in for the model server image here: the predictor only adds env and CMD to its base
    result = run_cli(
        "build-image",
        str(package),
        "--format",
        "predictor",
        "--image",
        f"{registry.host}/predictors/fraud:v7",
        "--base-image",
        busybox_base,
        "--insecure",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    config = skopeo_json("inspect", "--tls-verify=false", "--config", "--raw", f"docker://{document['image']}")
    assert config["config"]["Cmd"] == ["/models"]  # type: ignore[index]
    assert config["config"]["Env"] == ["AISERVING_MODEL_DIR=/models"]  # type: ignore[index]
    assert config["config"]["Labels"]["ai.creativeflow.image.format"] == "predictor"  # type: ignore[index]
    assert document["base_digest"] == busybox_base.split("@", 1)[1]
    assert document["image"] == f"{registry.host}/predictors/fraud@{document['digest']}"
