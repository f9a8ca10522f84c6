"""A bearer-token service for docker-registry's ``auth.token`` mode: issues RS256 JWTs the registry verifies.

The registry trusts the signing certificate (``root_cert``); the token carries it in ``x5c``. Only the
configured user gets a token, with exactly the scopes asked for.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from aiserving.local.registry import TokenAuth

SERVICE = "aiserving-test-registry"
ISSUER = "aiserving-test-token-service"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """Serve ``GET /token`` on 127.0.0.1 until closed; ``requests`` records the scopes asked for."""

    def __init__(self, directory: Path, user: str, password: str, *, reader: tuple[str, str] | None = None) -> None:
        self.user, self.password = user, password
        self.reader = reader  # a second user who only ever gets pull access
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.datetime.now(datetime.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self.key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        self.root_cert = directory / "token-signer.pem"
        self.root_cert.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[list[str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.handle(self)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def auth(self) -> TokenAuth:
        """What the registry's ``auth.token`` config needs."""
        return TokenAuth(f"http://127.0.0.1:{self.httpd.server_port}/token", SERVICE, ISSUER, self.root_cert)

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlparse(request.path).query)
        scopes = query.get("scope", [])
        self.requests.append(scopes)
        users = {self.user: self.password, **dict([self.reader] if self.reader else [])}
        granted = {
            "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode(): name
            for name, password in users.items()
        }
        user = granted.get(request.headers.get("Authorization", ""))
        if user is None:
            request.send_response(401)
            request.end_headers()
            return
        if user != self.user:
            scopes = [scope.rsplit(":", 1)[0] + ":pull" for scope in scopes]
        body = json.dumps({"token": self.token(scopes, user), "expires_in": 300}).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def token(self, scopes: list[str], subject: str) -> str:
        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    def __enter__(self) -> TokenServer:
        self.thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
