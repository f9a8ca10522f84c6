"""Canary control on a live InferenceService: set the percent, promote, roll back, report the split.

Knative mode drives ``spec.predictor.canaryTrafficPercent`` (promote removes it with a JSON merge patch
``null``; rollback sets 0). Standard mode (KServe >= 0.20) drives ``spec.canary[]`` (promote makes the
canary's predictor the stable one; rollback removes the entries). A rollback when no canary is in
progress restores the spec kept in the history ConfigMap before the last change.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from inference_services.apply import Write, write_with_retries
from inference_services.connection import KubeClients
from inference_services.history import DeploymentHistory, HistoryStore
from inference_services.isvc_api import InferenceServiceApi
from inference_services.readiness import Check, serving_as_written, stable_serves_everything, wait_for
from inference_services.traffic import (
    DeploymentMode,
    TrafficShare,
    canary_in_progress,
    deployment_mode,
    is_true,
    observed_generation,
    traffic_split,
)
from serving_core.errors import InvalidInputError, NotFoundError
from serving_core.kube_objects import Document, metadata, spec


@dataclass(frozen=True)
class CanaryReport:
    """What ``aiserving canary status`` prints."""

    name: str
    namespace: str
    mode: DeploymentMode
    generation: int
    observed_generation: int
    ready: bool
    canary_in_progress: bool
    shares: list[TrafficShare]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "namespace": self.namespace,
            "mode": self.mode.value,
            "generation": self.generation,
            "observedGeneration": self.observed_generation,
            "ready": self.ready,
            "canaryInProgress": self.canary_in_progress,
            "traffic": [share.__dict__ for share in self.shares],
        }


def check_percent(percent: int) -> int:
    """Refuse a canary percent outside 0-100 (the CRD has no bounds, so the API server would accept it).

    Raises:
        InvalidInputError: out of range.
    """
    if not 0 <= percent <= 100:
        raise InvalidInputError(f"canary percent {percent} is outside 0-100", hint="give a percent from 0 to 100")
    return percent


class CanaryControl:
    """Canary operations on InferenceServices in one namespace."""

    def __init__(self, clients: KubeClients, namespace: str) -> None:
        """Bind to the clients and namespace."""
        self.clients = clients
        self.api = InferenceServiceApi(clients, namespace)
        self.history = HistoryStore(clients, namespace)

    def _require(self, live: Document | None, name: str) -> Document:
        if live is None:
            raise NotFoundError(
                f'InferenceService "{self.api.namespace}/{name}" does not exist',
                hint="deploy it first with aiserving deploy CONFIG, or check -n",
            )
        return live

    def _finish(self, written: Document, wait: bool, timeout_s: float, check: Check) -> Document:
        return wait_for(self.api, written, timeout_s=timeout_s, check=check) if wait else written

    def set_percent(self, name: str, percent: int, *, wait: bool = False, timeout_s: float = 300) -> Document:
        """Send ``percent`` of requests to the canary (Knative: the latest ready revision)."""
        check_percent(percent)

        def plan(live: Document | None) -> Write:
            live = self._require(live, name)
            if deployment_mode(live) is DeploymentMode.KNATIVE:
                return Write(merge_patch={"spec": {"predictor": {"canaryTrafficPercent": percent}}})
            entries = copy.deepcopy(spec(live).get("canary") or [])
            if not entries:
                raise InvalidInputError(
                    f'InferenceService "{self.api.namespace}/{name}" has no Standard-mode canary to set',
                    hint="deploy a config with canary_percent first; it adds the spec.canary entry",
                )
            for entry in entries:
                entry["trafficPercent"] = percent
            # A merge patch replaces lists whole, so the complete list is sent.
            return Write(merge_patch={"spec": {"canary": entries}})

        written = write_with_retries(self.api, name, plan).document
        return self._finish(written, wait, timeout_s, serving_as_written)

    def promote(self, name: str, *, wait: bool = False, timeout_s: float = 300) -> Document:
        """Give the canary all traffic and make it the stable predictor."""
        history = self.history.load(name)

        def plan(live: Document | None) -> Write:
            live = self._require(live, name)
            if not canary_in_progress(live):
                raise InvalidInputError(
                    f'InferenceService "{self.api.namespace}/{name}" has no canary in progress to promote',
                    hint="aiserving canary status NAME shows the current split",
                )
            if deployment_mode(live) is DeploymentMode.KNATIVE:
                # Removing the field (JSON null) promotes; 100 would make every later change a full rollout.
                return Write(merge_patch={"spec": {"predictor": {"canaryTrafficPercent": None}}})
            entry = spec(live)["canary"][0]
            predictor = copy.deepcopy(history.canary_predictor or entry["predictor"])
            predictor["name"] = entry["predictor"]["name"]
            document = copy.deepcopy(live)
            document["spec"]["predictor"] = predictor
            document["spec"].pop("canary")
            return Write(document=document)

        written = write_with_retries(self.api, name, plan).document
        return self._finish(written, wait, timeout_s, serving_as_written)

    def rollback(self, name: str, *, wait: bool = False, timeout_s: float = 300) -> Document:
        """Stop a canary in progress, or after a promotion restore the spec kept before the last change."""
        live = self._require(self.api.find(name), name)
        if canary_in_progress(live):
            return self._stop_canary(name, wait, timeout_s)
        return self._restore_previous(name, wait, timeout_s)

    def _stop_canary(self, name: str, wait: bool, timeout_s: float) -> Document:
        def plan(live: Document | None) -> Write:
            live = self._require(live, name)
            if deployment_mode(live) is DeploymentMode.KNATIVE:
                return Write(merge_patch={"spec": {"predictor": {"canaryTrafficPercent": 0}}})
            return Write(merge_patch={"spec": {"canary": None}})

        written = write_with_retries(self.api, name, plan).document
        return self._finish(written, wait, timeout_s, stable_serves_everything)

    def _restore_previous(self, name: str, wait: bool, timeout_s: float) -> Document:
        history = self.history.load(name)
        previous = history.previous_spec
        if previous is None:
            raise NotFoundError(
                f'no previous spec was kept for InferenceService "{self.api.namespace}/{name}": '
                "nothing to roll back to",
                hint="a rollback needs an earlier aiserving deploy of a different spec",
            )

        def plan(live: Document | None) -> Write | None:
            live = self._require(live, name)
            if live["spec"] == previous:
                return None
            document = copy.deepcopy(live)
            document["spec"] = copy.deepcopy(previous)
            return Write(document=document)

        def keep_current(live: Document) -> None:
            # The spec we replace becomes the one to go back to, so a rollback can itself be undone.
            self.history.save(live, DeploymentHistory(previous_spec=copy.deepcopy(live["spec"])))

        written = write_with_retries(self.api, name, plan, before_write=keep_current).document
        return self._finish(written, wait, timeout_s, serving_as_written)

    def report(self, name: str) -> CanaryReport:
        """Which revision (or predictor) gets what percent now."""
        live = self._require(self.api.find(name), name)
        return CanaryReport(
            name=name,
            namespace=self.api.namespace,
            mode=deployment_mode(live),
            generation=int(metadata(live).get("generation") or 0),
            observed_generation=observed_generation(live),
            ready=is_true(live, "Ready"),
            canary_in_progress=canary_in_progress(live),
            shares=traffic_split(live),
        )
