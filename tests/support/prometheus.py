"""A real Prometheus (the Debian package) on 127.0.0.1 scraping given targets, for metric tests."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from serving_core.processes import announced_port, log_tail, stop_process, wait_for, wait_until

_LISTENING = re.compile(r'msg="Listening on" address=127\.0\.0\.1:(\d+)')


@dataclass
class LocalPrometheus:
    url: str

    def query(self, promql: str) -> list[dict[str, object]]:
        """An instant query's result vector."""
        response = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def scalar(self, promql: str) -> float | None:
        """The single value of a one-sample query, or ``None`` when the vector is empty."""
        result = self.query(promql)
        if not result:
            return None
        assert len(result) == 1, result
        value = result[0]["value"]
        assert isinstance(value, list)
        return float(value[1])

    def target_health(self) -> list[str]:
        """Each scrape target as ``URL health lastError``, to say why a series is missing."""
        response = requests.get(f"{self.url}/api/v1/targets", timeout=10)
        response.raise_for_status()
        targets = response.json()["data"]["activeTargets"]
        return [f"{target['scrapeUrl']} {target['health']} {target['lastError']!r}" for target in targets]


@contextmanager
def local_prometheus(work_dir: Path, targets: list[str], scrape_interval: str = "1s") -> Iterator[LocalPrometheus]:
    """Start Prometheus with a generated scrape config for ``targets`` (host:port); stop it afterwards."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise FileNotFoundError("prometheus is not installed: apt-get install prometheus (make system-deps)")
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [{"job_name": "model-server", "static_configs": [{"targets": targets}]}],
    }
    config_path = work_dir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    log_path = work_dir / "prometheus.log"
    command = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={work_dir / 'data'}",
        "--web.listen-address=127.0.0.1:0",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def ready(url: str) -> bool:
        try:
            return requests.get(f"{url}/-/ready", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        try:
            port = wait_for(
                lambda: announced_port(log_path, _LISTENING), timeout_s=60, what="prometheus", process=process
            )
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: ready(url), timeout_s=60, what="prometheus", process=process)
        except Exception as error:
            raise AssertionError(f"{error}\n{log_tail(log_path)}") from error
        yield LocalPrometheus(url)
    finally:
        stop_process(process)
