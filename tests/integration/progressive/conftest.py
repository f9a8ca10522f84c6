"""Shared real servers for the rollout scenarios: the test API server, two model wrappers, Prometheus."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from inference_services.connection import KubeClients
from inference_services.deploy import deploy
from progressive_delivery.replay_sink import ReplaySink, SinkSettings
from tests.support.canary_load import WeightedLoad, save_switchable_classifier
from tests.support.isvc_configs import gpu_config, model_uri
from tests.support.kube_api.fixtures import KubeTestCluster, fresh_namespace, running_cluster
from tests.support.kube_api.resources import INFERENCE_SERVICES
from tests.support.prometheus import LocalPrometheus, local_prometheus
from tests.support.served_models import RunningServer, running_server
from tests.support.tools import require_tools

MODEL = "clf"
STABLE_URI, CANARY_URI = model_uri("clf", 1), model_uri("clf", 2)
_names = itertools.count(1)


@dataclass
class CanaryLab:
    """Everything a scenario uses; ``behaviour`` picks what the canary process does."""

    cluster: KubeTestCluster
    clients: KubeClients
    namespace: str
    stable: RunningServer
    canary: RunningServer
    prometheus: LocalPrometheus
    sink: ReplaySink
    behaviour_file: Path
    analysis_file: Path
    work: Path

    def set_behaviour(self, behaviour: str) -> None:
        self.behaviour_file.write_text(behaviour, encoding="utf-8")

    def labels(self, server: RunningServer) -> dict[str, str]:
        return {"instance": f"127.0.0.1:{server.http_port}"}

    def deploy_canary(self, mode: str) -> str:
        """A fresh InferenceService: v1 serving 100 %, then v2 deployed as a 0 % canary; returns its name."""
        name = f"clf-{mode[:3]}-{next(_names)}"
        deploy(gpu_config(name, 1, mode=mode), self.clients, namespace=self.namespace, wait=True, timeout_s=30)
        canary = gpu_config(name, 2, mode=mode, canary=0)
        deploy(canary, self.clients, namespace=self.namespace, wait=True, timeout_s=30)
        return name

    def served(self, name: str) -> dict[str, int]:
        """Model (storage URI) → percent, as the controller serves it now."""
        split = self.cluster.controller.serving(self.namespace, name)
        shares: dict[str, int] = {}
        for model, percent in split.values():
            # The simulator names the model by storage URI; ours carry the ISVC name: map to v1 / v2.
            key = STABLE_URI if model.endswith("/1") else CANARY_URI
            shares[key] = shares.get(key, 0) + percent
        return shares

    def load(self, name: str, rate_per_s: float = 30.0) -> WeightedLoad:
        def split() -> tuple[dict[str, int], str | None]:
            document = self.cluster.server.store.get(INFERENCE_SERVICES, self.namespace, name)
            logger = document["spec"]["predictor"].get("logger") or {}
            return self.served(name), logger.get("url")

        servers = {STABLE_URI: self.stable.url, CANARY_URI: self.canary.url}
        return WeightedLoad(split, servers, MODEL, (self.namespace, name), rate_per_s=rate_per_s)


# Small samples and short budgets so a scenario decides in seconds; thresholds sit on histogram buckets.
ANALYSIS = {
    "mode": "wrapper",
    "interval_seconds": 1,
    "min_requests_per_arm": 15,
    "inconclusive_budget_seconds": 8,
    "slow_threshold_seconds": 0.25,
    # Loose tolerances so ~30 canary requests decide (the forecast's 4 s at 30 requests/s and 25 %).
    "error": {"relative": 0.5, "absolute": 0.15, "alpha": 0.1, "beta": 0.1, "guardrail": 0.25},
    "slow": {"relative": 0.5, "absolute": 0.15, "alpha": 0.1, "beta": 0.1, "guardrail": 0.3},
    "latency": {"enabled": False},
    # A class-distribution check needs hundreds of predictions to tell noise from change; changed
    # predictions are caught here by the shadow stage's paired agreement instead.
    "distribution": {"enabled": False},
    "baseline_error_rate": 0.05,
    "shadow": {"min_pairs": 20, "agreement_min": 0.9},
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CanaryLab]:
    require_tools("prometheus")
    work = tmp_path_factory.mktemp("canary-lab")
    behaviour = work / "canary-behaviour"
    (work / "stable").mkdir()
    (work / "canary").mkdir()
    stable_model = save_switchable_classifier(work / "stable-model", work / "stable-behaviour")
    canary_model = save_switchable_classifier(work / "canary-model", behaviour)
    analysis_file = work / "analysis.yaml"
    analysis_file.write_text(yaml.safe_dump(ANALYSIS), encoding="utf-8")
    with (
        running_server(stable_model, MODEL, work / "stable") as stable,
        running_server(canary_model, MODEL, work / "canary") as canary,
        ReplaySink(SinkSettings(canary_url=canary.url, model_name=MODEL)) as sink,
    ):
        targets = [f"127.0.0.1:{server.http_port}" for server in (stable, canary)] + [sink.url.removeprefix("http://")]
        with local_prometheus(work, targets) as prometheus:
            for cluster in running_cluster(work):
                namespace = fresh_namespace(cluster)
                yield CanaryLab(cluster, cluster.clients(), namespace, stable, canary, prometheus, sink, behaviour,
                                analysis_file, work)  # fmt: skip
