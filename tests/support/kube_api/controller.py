"""A KServe controller simulator: revisions, pods, events, status and traffic, in both deployment modes.

It follows the API server's own store (not HTTP, so it never shows up in the request log) and answers
each new generation of an InferenceService like KServe does:

- Knative mode: a new revision per predictor template change (``canaryTrafficPercent`` is not part of
  the template); the latest *ready* revision gets ``canaryTrafficPercent`` and the last rolled-out
  revision the rest; without the field (or at 100) the latest ready revision takes 100 % and becomes
  the rolled-out one; a revision that is never ready gets no traffic and turns ``Ready`` False.
- Standard mode: one deployment per component (stable predictor, each ``spec.canary[]`` entry); a
  stable rollout keeps the old pods serving until the new ones are ready; ready canaries get their
  ``trafficPercent``; ``status.canaryStatuses`` shows it.
- ``status.observedGeneration`` is written only after ``reconcile_delay_s``, so a client that trusts
  a stale ``Ready`` right after its write is caught.

Behaviours are scripted per storage URI (or image): ready after a delay, or never ready with a pod
event such as ``0/3 nodes are available: 3 Insufficient nvidia.com/gpu.``.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Any

from tests.support.kube_api.errors import ApiStatusError
from tests.support.kube_api.resources import EVENTS, INFERENCE_SERVICES, PODS
from tests.support.kube_api.store import ObjectStore

_NOT_TEMPLATE = ("canaryTrafficPercent",)
_NOT_STANDARD_TEMPLATE = ("name", "minReplicas", "maxReplicas", "scaleMetric", "scaleTarget", "autoScaling",
                          "canaryTrafficPercent")  # fmt: skip


@dataclass(frozen=True)
class Behaviour:
    """How the pods of a revision with a given model behave."""

    ready_after_s: float = 0.05
    never_ready: bool = False
    event_reason: str = "FailedScheduling"
    event_message: str = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."


@dataclass
class Revision:
    """One revision (Knative) or one deployment rollout (Standard)."""

    name: str
    component: str
    template: dict[str, Any]
    model: str
    ready: bool = False
    failed_message: str = ""


@dataclass
class _State:
    uid: str
    observed: int = 0
    counter: int = 0
    revisions: list[Revision] = field(default_factory=list)
    rolled_out: str | None = None
    previous_rolled_out: str | None = None
    stable_serving: Revision | None = None


def model_of(predictor: dict[str, Any]) -> str:
    """The storage URI or image that identifies what a predictor serves."""
    model = predictor.get("model") or {}
    if model.get("storageUri"):
        return str(model["storageUri"])
    containers = predictor.get("containers") or [{}]
    return str(containers[0].get("image", ""))


def _mode(document: dict[str, Any]) -> str:
    annotation = document["metadata"].get("annotations", {}).get("serving.kserve.io/deploymentMode", "Serverless")
    return "Standard" if annotation in ("RawDeployment", "Standard") else "Knative"


class ControllerSimulator:
    """Start with ``with ControllerSimulator(server.store):``; script with :meth:`script`."""

    def __init__(self, store: ObjectStore, reconcile_delay_s: float = 0.1) -> None:
        self.store = store
        self.reconcile_delay_s = reconcile_delay_s
        self._behaviours: dict[str, Behaviour] = {}
        self._states: dict[tuple[str, str], _State] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="controller-sim", daemon=True)

    def __enter__(self) -> ControllerSimulator:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def script(self, model: str, behaviour: Behaviour) -> None:
        """Make revisions serving ``model`` (storage URI or image) behave this way."""
        with self._lock:
            self._behaviours[model] = behaviour

    def serving(self, namespace: str, name: str) -> dict[str, tuple[str, int]]:
        """Revision name -> (model, percent) for every revision that gets traffic now."""
        document = self.store.get(INFERENCE_SERVICES, namespace, name)
        with self._lock:
            state = self._states[(namespace, name)]
            by_name = {revision.name: revision for revision in state.revisions}
        status = document.get("status", {})
        result: dict[str, tuple[str, int]] = {}
        if _mode(document) == "Knative":
            for entry in status.get("components", {}).get("predictor", {}).get("traffic", []):
                if entry["percent"]:
                    result[entry["revisionName"]] = (by_name[entry["revisionName"]].model, entry["percent"])
            return result
        stable_percent = 100 - sum(item.get("trafficPercent", 0) for item in status.get("canaryStatuses", []))
        if state.stable_serving is not None and stable_percent:
            result[state.stable_serving.name] = (state.stable_serving.model, stable_percent)
        for item in status.get("canaryStatuses", []):
            if item.get("trafficPercent"):
                revision = self._current(state, item["name"])
                if revision is not None:
                    result[revision.name] = (revision.model, item["trafficPercent"])
        return result

    # -- following the store ------------------------------------------------------------------------

    def _follow(self) -> None:
        seen = self.store.resource_version
        while not self._stop.is_set():
            events, seen = self.store.events_after(INFERENCE_SERVICES, None, seen, 0.2)
            for event in events:
                metadata = event.object["metadata"]
                key = (event.namespace, metadata["name"])
                if event.type == "DELETED":
                    with self._lock:
                        self._states.pop(key, None)
                    continue
                with self._lock:
                    observed = self._states.get(key, _State(uid="")).observed
                if metadata.get("generation", 0) > observed:
                    self._later(self.reconcile_delay_s, key)

    def _later(self, delay_s: float, key: tuple[str, str]) -> None:
        timer = threading.Timer(delay_s, self._reconcile, args=key)
        timer.daemon = True
        timer.start()

    # -- reconciling --------------------------------------------------------------------------------

    def _reconcile(self, namespace: str, name: str) -> None:
        if self._stop.is_set():
            return
        with self._lock:
            try:
                document = self.store.get(INFERENCE_SERVICES, namespace, name)
            except ApiStatusError:
                return
            uid = document["metadata"]["uid"]
            state = self._states.get((namespace, name))
            if state is None or state.uid != uid:
                state = self._states[(namespace, name)] = _State(uid=uid)
            if _mode(document) == "Knative":
                status = self._reconcile_knative(document, state)
            else:
                status = self._reconcile_standard(document, state)
            state.observed = document["metadata"]["generation"]
            status["observedGeneration"] = state.observed
            status["url"] = f"http://{name}.{namespace}.example.com"
            try:
                self.store.update(INFERENCE_SERVICES, namespace, name, {"status": status}, status_only=True,
                                  require_resource_version=False)  # fmt: skip
            except ApiStatusError:
                return

    def _revision_for(self, document: dict[str, Any], state: _State, component: str, predictor: dict[str, Any],
                      dropped: tuple[str, ...]) -> Revision:  # fmt: skip
        template = {key: value for key, value in predictor.items() if key not in dropped}
        current = self._current(state, component)
        if current is not None and current.template == template:
            return current
        state.counter += 1
        isvc = document["metadata"]["name"]
        revision = Revision(f"{isvc}-{component}-{state.counter:05d}", component, copy.deepcopy(template),
                            model_of(predictor))  # fmt: skip
        state.revisions.append(revision)
        self._start_pods(document, revision)
        return revision

    @staticmethod
    def _current(state: _State, component: str) -> Revision | None:
        candidates = [revision for revision in state.revisions if revision.component == component]
        return candidates[-1] if candidates else None

    def _start_pods(self, document: dict[str, Any], revision: Revision) -> None:
        metadata = document["metadata"]
        namespace = metadata["namespace"]
        # A scripted key matches a model exactly or as a prefix (an image repository before its digest).
        behaviour = next(
            (scripted for key, scripted in self._behaviours.items() if revision.model.startswith(key)), Behaviour()
        )
        pod_name = f"{revision.name}-deployment-7d9f8"
        pod = {
            "metadata": {
                "name": pod_name,
                "labels": {
                    "serving.kserve.io/inferenceservice": metadata["name"],
                    "component": "predictor",
                    "serving.knative.dev/revision": revision.name,
                },
                "ownerReferences": [
                    {
                        "apiVersion": INFERENCE_SERVICES.api_version,
                        "kind": "InferenceService",
                        "name": metadata["name"],
                        "uid": metadata["uid"],
                    }
                ],
            },
            "spec": {"containers": [{"name": "kserve-container", "image": revision.model}]},
            "status": {"phase": "Pending"},
        }
        self.store.create(PODS, namespace, pod)
        if behaviour.never_ready:
            revision.failed_message = behaviour.event_message
            self.store.create(
                EVENTS,
                namespace,
                {
                    "metadata": {"name": f"{pod_name}.1"},
                    "involvedObject": {"kind": "Pod", "name": pod_name, "namespace": namespace},
                    "reason": behaviour.event_reason,
                    "message": behaviour.event_message,
                    "type": "Warning",
                    "count": 1,
                },
            )
            return

        def become_ready() -> None:
            with self._lock:
                revision.ready = True
                try:
                    current = self.store.get(PODS, namespace, pod_name)
                except ApiStatusError:
                    return
                current["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
                self.store.update(PODS, namespace, pod_name, current, status_only=True, require_resource_version=False)
            self._reconcile(namespace, metadata["name"])

        timer = threading.Timer(behaviour.ready_after_s, become_ready)
        timer.daemon = True
        timer.start()

    def _reconcile_knative(self, document: dict[str, Any], state: _State) -> dict[str, Any]:
        predictor = document["spec"]["predictor"]
        latest = self._revision_for(document, state, "predictor", predictor, _NOT_TEMPLATE)
        ready = [revision for revision in state.revisions if revision.ready]
        latest_ready = ready[-1] if ready else None
        percent = predictor.get("canaryTrafficPercent")
        traffic: list[dict[str, Any]] = []
        if latest_ready is not None:
            splitting = (
                percent is not None and percent < 100 and state.rolled_out and latest_ready.name != state.rolled_out
            )
            if splitting:
                traffic = [
                    {"revisionName": latest_ready.name, "percent": percent, "latestRevision": True, "tag": "latest"},
                    {"revisionName": state.rolled_out, "percent": 100 - percent, "latestRevision": False,
                     "tag": "prev"},
                ]  # fmt: skip
            else:
                if state.rolled_out != latest_ready.name:
                    state.previous_rolled_out, state.rolled_out = state.rolled_out, latest_ready.name
                traffic = [{"revisionName": latest_ready.name, "percent": 100, "latestRevision": True}]
        predictor_ready = _condition("PredictorReady", latest.ready, latest.failed_message)
        ingress_ready = _condition("IngressReady", bool(traffic), "")
        components = {
            "latestCreatedRevision": latest.name,
            "traffic": traffic,
        }
        if latest_ready is not None:
            components["latestReadyRevision"] = latest_ready.name
        if state.rolled_out:
            components["latestRolledoutRevision"] = state.rolled_out
        if state.previous_rolled_out:
            components["previousRolledoutRevision"] = state.previous_rolled_out
        return {
            "deploymentMode": "Knative",
            "components": {"predictor": components},
            "conditions": [
                ingress_ready,
                predictor_ready,
                _condition("Ready", latest.ready and bool(traffic), latest.failed_message),
            ],
        }

    def _reconcile_standard(self, document: dict[str, Any], state: _State) -> dict[str, Any]:
        predictor = document["spec"]["predictor"]
        stable = self._revision_for(document, state, predictor.get("name", "predictor"), predictor,
                                    _NOT_STANDARD_TEMPLATE)  # fmt: skip
        if stable.ready:
            state.stable_serving = stable
        canary_statuses = []
        canaries_ready = True
        for entry in document["spec"].get("canary") or []:
            revision = self._revision_for(document, state, entry["predictor"]["name"], entry["predictor"],
                                          _NOT_STANDARD_TEMPLATE)  # fmt: skip
            canaries_ready = canaries_ready and revision.ready
            canary_statuses.append(
                {"name": entry["predictor"]["name"], "ready": revision.ready,
                 "trafficPercent": entry["trafficPercent"] if revision.ready else 0}
            )  # fmt: skip
        conditions = [
            _condition("IngressReady", state.stable_serving is not None, ""),
            _condition("PredictorReady", stable.ready, stable.failed_message),
        ]
        failed = next((self._current(state, item["name"]) for item in canary_statuses if not item["ready"]), None)
        if canary_statuses:
            conditions.append(_condition("CanaryPredictorReady", canaries_ready,
                                         failed.failed_message if failed is not None else ""))  # fmt: skip
        everything_ready = stable.ready and canaries_ready and state.stable_serving is not None
        message = stable.failed_message or (failed.failed_message if failed is not None else "")
        conditions.append(_condition("Ready", everything_ready, message))
        status: dict[str, Any] = {
            "deploymentMode": "Standard",
            "components": {"predictor": {}},
            "conditions": conditions,
        }
        if canary_statuses:
            status["canaryStatuses"] = canary_statuses
        return status


def _condition(kind: str, ok: bool, failure: str) -> dict[str, Any]:
    if ok:
        return {"type": kind, "status": "True"}
    if failure:
        return {"type": kind, "status": "False", "reason": "RevisionFailed", "message": failure}
    return {"type": kind, "status": "Unknown", "reason": "RevisionNotReady"}
