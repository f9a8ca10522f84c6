"""Helpers for the image tests: packages, a busybox rootfs, TLS certificates, htpasswd, skopeo/buildah."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import subprocess
import warnings
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def make_package(root: Path, *, weights: bytes | None = None) -> Path:
    """A package like the packaging step writes: nested dirs, package.json, lineage.json, a relative symlink."""
    (root / "fraud" / "1").mkdir(parents=True)
    (root / "fraud" / "config.pbtxt").write_text('name: "fraud"\nbackend: "onnxruntime"\n')
    (root / "fraud" / "1" / "model.onnx").write_bytes(weights if weights is not None else os.urandom(300_000))
    (root / "fraud" / "1" / "empty.txt").write_bytes(b"")
    (root / "fraud" / "latest").symlink_to("1")
    (root / "scripts").mkdir()
    (root / "scripts" / "warmup.sh").write_text("#!/bin/sh\necho warm\n")
    (root / "scripts" / "warmup.sh").chmod(0o755)
    (root / "empty-dir").mkdir()
    (root / ("näme with spaces and a very long name " + "x" * 80 + ".json")).write_text("{}")
    (root / "package.json").write_text(
        json.dumps(
            {
                "runtime": "triton",
                "modelFormat": {"name": "onnx", "version": "1"},
                "protocol": "v2",
                "package_digest": "sha256:" + "ab" * 32,
            }
        )
    )
    (root / "lineage.json").write_text(
        json.dumps(
            {
                "name": "fraud-detector",
                "version": "7",
                "aliases": ["champion"],
                "requested_uri": "models:/fraud-detector@champion",
                "run_id": "0123abcd",
                "model_id": "m-42",
                "source": "models:/m-42",
                "tracking_uri": "http://mlflow:5000",
                "resolved_at": "2026-11-28T10:00:00Z",
                "content_digest": "sha256:" + "cd" * 32,
                "file_count": 3,
                "total_bytes": 300_000,
            }
        )
    )
    return root


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under root: file bytes, symlink targets, and directories, keyed by relative path."""
    result: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            result[relative] = ("symlink", os.readlink(path))
        elif path.is_dir():
            result[relative] = "dir"
        else:
            result[relative] = path.read_bytes()
    return result


def make_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1: returns (ca.pem, server.pem, server-key.pem)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aiserving test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_path, cert_path, key_path


def write_htpasswd(path: Path, user: str, password: str) -> Path:
    """A bcrypt htpasswd file (the only hash distribution accepts), made with libcrypt."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    path.write_text(f"{user}:{hashed}\n")
    return path


def dockerconfigjson(host: str, user: str, password: str) -> str:
    """The content of a kubernetes.io/dockerconfigjson secret for one registry."""
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {host: {"auth": auth}}})


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)


def skopeo_json(*args: str) -> dict[str, object]:
    result = skopeo(*args)
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


class Buildah:
    """buildah with its own vfs storage under a temporary directory, chroot isolation for RUN."""

    def __init__(self, state: Path) -> None:
        self.root = state / "root"
        self.runroot = state / "runroot"

    def __call__(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        command = ["buildah", "--root", str(self.root), "--runroot", str(self.runroot), "--storage-driver", "vfs"]
        return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout)
