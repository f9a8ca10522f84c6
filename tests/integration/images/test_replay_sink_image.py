"""The replay-sink image, built from images/replay-sink offline, replays logged traffic to a canary.

The container runs what manifests/base/shadow/replay-sink.yaml runs: the image's entry point with the
manifest's args (its ``$(VAR)`` references filled from the ConfigMap values the test chooses), as UID 1000
with a read-only root filesystem and no capabilities. It shares the host's network (tests/support/
containers.conf) to reach the canary, our model wrapper on 127.0.0.1, so it listens on a port of its own
choosing (``--port=0`` and a port file) instead of the manifest's 8080, which the host may be using.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from tests.conftest import REPO_ROOT
from tests.support.containers import ContainerTools
from tests.support.kserve_logger import LoggerIdentity, log_exchange
from tests.support.served_models import RunningServer

# The image is built in the background from the start of the run (tests/conftest.py); this test waits for it.
pytestmark = [pytest.mark.timeout(2400), pytest.mark.cluster_path]
SINK_MANIFEST = REPO_ROOT / "manifests" / "base" / "shadow" / "replay-sink.yaml"
IDENTITY = LoggerIdentity("iris", "shadow-image-test")


def manifest_args(values: dict[str, str]) -> list[str]:
    """The replay-sink Deployment's container args with each ``$(VAR)`` replaced as Kubernetes would."""
    deployment = next(doc for doc in yaml.safe_load_all(SINK_MANIFEST.read_text()) if doc["kind"] == "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return [re.sub(r"\$\((\w+)\)", lambda match: values[match.group(1)], arg) for arg in container["args"]]


@pytest.fixture
def sink_url(
    replay_sink_image: str,
    container_tools: ContainerTools,
    iris_server: tuple[RunningServer, Path],
    tmp_path: Path,
) -> Iterator[str]:
    server, _ = iris_server
    tmp_path.chmod(0o777)  # the container's user writes its port file here
    values = {"CANARY_URL": server.url, "MODEL_NAME": "iris", "INFERENCE_SERVICE": IDENTITY.inference_service}
    args = [arg for arg in manifest_args(values) if not arg.startswith("--port=")]
    args += ["--port=0", "--port-file=/work/ports.json"]
    container_id = container_tools.run(
        "podman", "run", "--detach", "--read-only", "--user=1000:1000", "--cap-drop=ALL",
        f"--volume={tmp_path}:/work", replay_sink_image, *args,
    ).stdout.strip()  # fmt: skip
    try:
        yield f"http://127.0.0.1:{wait_for_port(container_tools, container_id, tmp_path / 'ports.json')}"
    finally:
        container_tools.run("podman", "rm", "--force", "--time=5", container_id, check=False)


def wait_for_port(tools: ContainerTools, container_id: str, port_file: Path, timeout_s: float = 60) -> int:
    """The sink's port once it listens; fail with the container's log when it exits or never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text():
            return int(json.loads(port_file.read_text())["http"])
        if tools.run("podman", "inspect", "--format", "{{.State.Status}}", container_id).stdout.strip() != "running":
            break
        time.sleep(0.3)
    logs = tools.run("podman", "logs", container_id, check=False)
    pytest.fail(f"replay sink container did not start listening:\n{(logs.stdout + logs.stderr)[-3000:]}")


def test_the_replay_sink_image_replays_logged_requests_to_the_canary(
    sink_url: str, iris_server: tuple[RunningServer, Path]
) -> None:
    server, _ = iris_server
    session = requests.Session()
    assert session.get(f"{sink_url}/healthz", timeout=5).text == "ok"
    body = json.dumps(
        {"inputs": [{"name": "input_0", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
    )
    answer = session.post(
        f"{server.url}/v2/models/iris/infer", data=body, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    # An event of another InferenceService is ignored, as the manifest's --inference-service asks.
    other = LoggerIdentity("other", IDENTITY.namespace)
    assert log_exchange(session, sink_url, other, body.encode(), answer.content) == [200, 200]
    assert log_exchange(session, sink_url, IDENTITY, body.encode(), answer.content) == [200, 200]

    deadline = time.monotonic() + 30
    while (summary := session.get(f"{sink_url}/summary", timeout=5).json())["pairs"]["agree"] < 1:
        assert time.monotonic() < deadline, summary
        time.sleep(0.3)
    assert summary["agreement"] == 1.0
    assert sum(summary["pairs"].values()) == 1
    metrics = session.get(f"{sink_url}/metrics", timeout=5).text
    assert re.search(r'^shadow_ignored_events_total\{reason="other_service"\} 2\.0$', metrics, re.MULTILINE), metrics
