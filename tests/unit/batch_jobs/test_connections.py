"""The batch client's HTTP/1.1 connections, against servers on 127.0.0.1 that answer with exact bytes.

Each server is an ``asyncio`` server written for the case (keep-alive, close after each answer, no length,
chunked, silence), so what the pool must cope with is on the wire, not in a mock.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from batch_jobs.client import Batch, Outcome, V2BatchClient
from batch_jobs.concurrency import ConcurrencySettings
from batch_jobs.connections import ConnectionPool, Endpoint, RawAnswer
from batch_jobs.schema import encoder_for, parse_metadata
from serving_core.errors import InvalidInputError

Reply = Callable[[bytes], bytes]  # request body -> whole answer (status line, headers, body)


@dataclass
class Served:
    """What a test server saw: connections accepted and request bodies, in order."""

    url: str = ""
    connections: int = 0
    bodies: list[bytes] = field(default_factory=list)


def keep_alive(status: int = 200, headers: str = "") -> Reply:
    def reply(body: bytes) -> bytes:
        answer = b'{"echo": ' + body + b"}"
        head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(answer)}\r\n{headers}\r\n"
        return head.encode() + answer

    return reply


async def serve(
    reply: Reply,
    body: Callable[[Served], Awaitable[None]],
    *,
    close_after: bool = False,
    tls: ssl.SSLContext | None = None,
) -> Served:
    """Run ``body`` against a server that answers each request with ``reply(request body)`` (over TLS with ``tls``)."""
    served = Served()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                request = await reader.readexactly(length)
                served.bodies.append(request)
                writer.write(reply(request))
                await writer.drain()
                if close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    served.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/v2/models/m/infer"
    async with server:
        await body(served)
    return served


def pool_for(served: Served, timeout_s: float = 5.0) -> tuple[ConnectionPool, list[int]]:
    """A pool on the served URL and the in-flight counts it reported at each send."""
    sends: list[int] = []

    def on_send(in_flight: int) -> int:
        sends.append(in_flight)
        return len(sends)

    return ConnectionPool(served.url, on_send, timeout_s), sends


async def one_by_one(served: Served, *bodies: bytes) -> list[RawAnswer]:
    """Send ``bodies`` one at a time through a pool of one request in flight; the answers, in order."""
    pool, _ = pool_for(served)
    pool.capacity = 1
    answers = [await pool.submit(body) for body in bodies]
    pool.close()
    return answers


def test_requests_share_one_keep_alive_connection_and_the_next_goes_out_from_the_answer() -> None:
    async def body(served: Served) -> None:
        pool, sends = pool_for(served)
        pool.capacity = 1
        futures = [pool.submit(f"{n}".encode()) for n in range(3)]
        assert (pool.in_flight, pool.queued) == (1, 2)
        first = await futures[0]
        # The second request left inside the callback that completed the first answer.
        assert (pool.in_flight, pool.queued) == (1, 1)
        answers = [first, *[await future for future in futures[1:]]]
        assert [(a.status, a.body, a.sequence, a.headers) for a in answers] == [
            (200, b'{"echo": 0}', 1, {"content-length": "11"}),
            (200, b'{"echo": 1}', 2, {"content-length": "11"}),
            (200, b'{"echo": 2}', 3, {"content-length": "11"}),
        ]
        assert all(answer.latency_s > 0 for answer in answers)
        assert sends == [1, 1, 1]
        pool.close()

    served = asyncio.run(serve(keep_alive(), body))
    assert (served.connections, served.bodies) == (1, [b"0", b"1", b"2"])


def test_a_server_that_closes_after_each_answer_gets_a_new_connection_per_request() -> None:
    async def body(served: Served) -> None:
        pool, _ = pool_for(served)
        pool.capacity = 2
        answers = await asyncio.gather(*(pool.submit(f"{n}".encode()) for n in range(4)))
        assert [answer.body for answer in answers] == [b'{"echo": 0}', b'{"echo": 1}', b'{"echo": 2}', b'{"echo": 3}']
        pool.close()

    def http10(request: bytes) -> bytes:
        answer = b'{"echo": ' + request + b"}"
        return f"HTTP/1.0 200 OK\r\nContent-Length: {len(answer)}\r\n\r\n".encode() + answer

    served = asyncio.run(serve(http10, body, close_after=True))
    assert served.connections == 4


def test_an_answer_without_length_ends_with_its_connection_and_a_chunked_one_with_its_last_chunk() -> None:
    def unsized(request: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it"

    def chunked(request: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nall \r\n5\r\nof it\r\n0\r\n\r\n"

    async def body(served: Served) -> None:
        answers = await one_by_one(served, b"a", b"b")
        assert [(answer.status, answer.body) for answer in answers] == [(200, b"all of it"), (200, b"all of it")]

    assert asyncio.run(serve(unsized, body, close_after=True)).connections == 2
    assert asyncio.run(serve(chunked, body)).connections == 1


def test_an_overload_answer_leaves_the_next_request_queued_until_the_job_decides() -> None:
    async def body(served: Served) -> None:
        pool, _ = pool_for(served)
        pool.capacity = 1
        first, second = pool.submit(b"1"), pool.submit(b"2")
        answer = await first
        assert (answer.status, answer.headers["retry-after"]) == (503, "0.3")
        await asyncio.sleep(0.05)
        assert (pool.in_flight, pool.queued, second.done()) == (0, 1, False)  # not sent on after a 503
        pool.capacity = 1  # the job's loop sets the capacity again once its pause is over
        assert (pool.in_flight, pool.queued) == (1, 0)
        assert (await second).status == 503
        pool.close()

    served = asyncio.run(serve(keep_alive(503, "Retry-After: 0.3\r\n"), body))
    assert served.bodies == [b"1", b"2"]


def test_refused_connections_and_silent_servers_are_answers_with_status_0() -> None:
    async def refused() -> RawAnswer:
        server = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        pool = ConnectionPool(f"http://127.0.0.1:{port}/infer", lambda in_flight: 7)
        pool.capacity = 1
        return await pool.submit(b"{}")

    answer = asyncio.run(refused())
    assert (answer.status, answer.latency_s, answer.sequence) == (0, 0.0, 7)
    assert answer.body.startswith(b"ConnectionRefusedError: ")

    async def body(served: Served) -> None:
        pool, _ = pool_for(served, timeout_s=0.2)
        pool.capacity = 1
        silent = await pool.submit(b"{}")
        assert (silent.status, silent.body, silent.sequence) == (0, b"TimeoutError: no answer within 0.2 s", 1)
        pool.close()

    asyncio.run(serve(lambda request: b"", body))


def test_endpoints_are_http_urls_with_a_host() -> None:
    assert Endpoint.of("http://iris.ai.svc.cluster.local/v2/models/iris/infer") == Endpoint(
        "iris.ai.svc.cluster.local", 80, False, "/v2/models/iris/infer", "iris.ai.svc.cluster.local"
    )
    assert Endpoint.of("https://[::1]:8443/v2/models/iris/infer?x=1") == Endpoint(
        "::1", 8443, True, "/v2/models/iris/infer?x=1", "[::1]:8443"
    )
    assert Endpoint.of("http://h:8080/infer").request(b"{}") == (
        b"POST /infer HTTP/1.1\r\nHost: h:8080\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
        b"User-Agent: aiserving-batch\r\n\r\n{}"
    )
    with pytest.raises(InvalidInputError, match="the model endpoint 'ftp://h/x' is not an http:// or https:// URL"):
        Endpoint.of("ftp://h/x")


def test_a_redirecting_endpoint_fails_its_items_naming_the_address_to_use() -> None:
    metadata = parse_metadata({"name": "m", "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1]}]})
    encoder = encoder_for(metadata, [{"x": 1.0}], "rows")
    outcomes: list[Outcome] = []

    async def body(served: Served) -> None:
        endpoint = served.url.removesuffix("/v2/models/m/infer")
        client = V2BatchClient(endpoint, "m", encoder, ConcurrencySettings(max_concurrency=1))
        await client._run([Batch((0, 1), ({"x": 1.0}, {"x": 2.0}))], lambda outcome, _: outcomes.append(outcome),
                          lambda: False)  # fmt: skip

    served = asyncio.run(serve(keep_alive(308, "Location: https://iris.example.com/v2/models/m/infer\r\n"), body))
    reason = (
        "HTTP 308: the endpoint redirects to https://iris.example.com/v2/models/m/infer; pass that URL as the endpoint"
    )
    assert [outcome.failed for outcome in outcomes] == [((0, reason), (1, reason))]
    assert [json.loads(request)["inputs"][0]["data"] for request in served.bodies] == [[1.0, 2.0]]  # sent once


def test_interim_answers_are_skipped_for_the_final_one() -> None:
    def early_hints(request: bytes) -> bytes:
        return b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + keep_alive()(request)

    async def body(served: Served) -> None:
        answers = await one_by_one(served, b"1", b"2")
        assert [(a.status, a.body, a.headers) for a in answers] == [
            (200, b'{"echo": 1}', {"content-length": "11"}),
            (200, b'{"echo": 2}', {"content-length": "11"}),
        ]

    assert asyncio.run(serve(early_hints, body)).connections == 1


def _certificate_authority(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A throwaway CA's certificate file and a server context whose certificate it signed for 127.0.0.1."""
    now = datetime.datetime.now(datetime.UTC)
    valid = {
        "not_valid_before": now - datetime.timedelta(minutes=1),
        "not_valid_after": now + datetime.timedelta(hours=1),
    }

    def certificate(name: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: ec.EllipticCurvePrivateKey,
                    *extensions: tuple[x509.ExtensionType, bool]) -> x509.Certificate:  # fmt: skip
        builder = x509.CertificateBuilder(
            subject_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]),
            issuer_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]),
            public_key=key.public_key(),
            serial_number=x509.random_serial_number(),
            **valid,
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical)
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("test CA", ca_key, "test CA", ca_key, (x509.BasicConstraints(ca=True, path_length=None), True))
    server = certificate(
        "127.0.0.1", server_key, "test CA", ca_key,
        (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False),
    )  # fmt: skip
    ca_file, chain_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain_file, key_file)
    return ca_file, context


def test_https_endpoints_are_verified_against_the_trusted_authorities(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file, server_tls = _certificate_authority(tmp_path)

    async def untrusted(served: Served) -> None:
        [answer] = await one_by_one(served, b"1")
        assert answer.status == 0
        assert b"CERTIFICATE_VERIFY_FAILED" in answer.body

    assert asyncio.run(serve(keep_alive(), untrusted, tls=server_tls)).bodies == []

    async def trusted(served: Served) -> None:
        answers = await one_by_one(served, b"1", b"2")
        assert [(a.status, a.body) for a in answers] == [(200, b'{"echo": 1}'), (200, b'{"echo": 2}')]

    # The cluster's CA bundle reaches the pool the way OpenSSL finds it in a pod: SSL_CERT_FILE.
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    served = asyncio.run(serve(keep_alive(), trusted, tls=server_tls))
    assert (served.connections, served.bodies) == (1, [b"1", b"2"])
