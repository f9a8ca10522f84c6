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

Each revision gets the objects KServe's chain ends in: a Knative ``Revision`` (Knative mode) and a
``ReplicaSet`` whose pods carry the predictor's resources and security context. Pods are created through
the API server's admission (:mod:`admission`): when a ResourceQuota, a LimitRange or Pod Security refuses
one, no Pod exists and a ``FailedCreate`` Warning event (``Error creating: pods "…" is forbidden: …``)
lands on the ReplicaSet (Standard mode) or the Revision (Knative mode), retried like the ReplicaSet
controller does until admission lets the pod in.

Behaviours are scripted per storage URI (or image): ready after a delay, or never ready with a
scheduler event in the current scheduler's words (:func:`insufficient`, :func:`untolerated_taint`).
"""

from __future__ import annotations

import copy
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.support.kube_api.admission import admit, refresh_quota_status
from tests.support.kube_api.errors import ApiStatusError
from tests.support.kube_api.resources import EVENTS, INFERENCE_SERVICES, PODS, REPLICA_SETS, REVISIONS, ResourceType
from tests.support.kube_api.store import ObjectStore, generated_suffix, now

_NOT_TEMPLATE = ("canaryTrafficPercent",)
_NOT_STANDARD_TEMPLATE = ("name", "minReplicas", "maxReplicas", "scaleMetric", "scaleTarget", "autoScaling",
                          "canaryTrafficPercent")  # fmt: skip


_NO_PREEMPTION = "no new claims to deallocate, preemption: 0/{nodes} nodes are available: {nodes} Preemption is not " \
                 "helpful for scheduling."  # fmt: skip
# KServe's controller and the kube-controller-manager, as their writes name them in managedFields.
KSERVE_MANAGER = "manager"
CONTROLLER_MANAGER = "kube-controller-manager"


def insufficient(resource: str = "nvidia.com/gpu", nodes: int = 3) -> str:
    """The scheduler's FailedScheduling message when no node has ``resource`` free."""
    return f"0/{nodes} nodes are available: {nodes} Insufficient {resource}. " + _NO_PREEMPTION.format(nodes=nodes)


def untolerated_taint(nodes: int = 3) -> str:
    """The scheduler's FailedScheduling message when every node has a taint the pod does not tolerate."""
    return f"0/{nodes} nodes are available: {nodes} node(s) had untolerated taint(s). " + _NO_PREEMPTION.format(
        nodes=nodes
    )


@dataclass(frozen=True)
class Behaviour:
    """How the pods of a revision with a given model behave."""

    ready_after_s: float = 0.05
    never_ready: bool = False
    event_reason: str = "FailedScheduling"
    event_message: str = field(default_factory=insufficient)


@dataclass
class Revision:
    """One revision (Knative) or one deployment rollout (Standard)."""

    name: str
    component: str
    template: dict[str, Any]
    model: str
    ready: bool = False
    failed_message: str = ""
    replica_set: str = ""


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

    def __init__(self, store: ObjectStore, reconcile_delay_s: float = 0.1, pod_retry_s: float = 0.5) -> None:
        self.store = store
        self.reconcile_delay_s = reconcile_delay_s
        self.pod_retry_s = pod_retry_s
        self._behaviours: dict[str, Behaviour] = {}
        # InferenceServices whose status reports a real server's URL (a local server stands in for the pods).
        self._urls: dict[tuple[str, str], str] = {}
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

    def serve_at(self, namespace: str, name: str, url: str) -> None:
        """Report ``url`` as the InferenceService's URL from its next reconcile on (instead of example.com)."""
        with self._lock:
            self._urls[(namespace, name)] = url

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
            try:
                events, seen = self.store.events_after(INFERENCE_SERVICES, None, seen, 0.2)
            except ApiStatusError as error:
                if error.code != 410:
                    raise
                seen = self._relist()  # the history was compacted before we read it: relist, as an informer does
                continue
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

    def _relist(self) -> int:
        """Reconcile every InferenceService whose generation is newer than the one last processed."""
        items, revision = self.store.list(INFERENCE_SERVICES, None)
        for item in items:
            key = (item["metadata"]["namespace"], item["metadata"]["name"])
            with self._lock:
                observed = self._states.get(key, _State(uid="")).observed
            if item["metadata"].get("generation", 0) > observed:
                self._later(self.reconcile_delay_s, key)
        return revision

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
            status["url"] = self._urls.get((namespace, name)) or f"http://{name}.{namespace}.example.com"
            try:
                self.store.update(INFERENCE_SERVICES, namespace, name, {"status": status}, status_only=True,
                                  require_resource_version=False, manager=KSERVE_MANAGER)  # fmt: skip
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
        """Create the revision's Knative Revision (Knative mode) and ReplicaSet, then try to create its pod."""
        metadata = document["metadata"]
        namespace = metadata["namespace"]
        isvc_labels = {"serving.kserve.io/inferenceservice": metadata["name"], "component": revision.component}
        owner: tuple[ResourceType, dict[str, Any]] = (INFERENCE_SERVICES, document)
        rs_prefix = f"{metadata['name']}-{revision.component}"
        if _mode(document) == "Knative":
            labels = {**isvc_labels, "serving.knative.dev/configuration": rs_prefix,
                      "serving.knative.dev/service": rs_prefix}  # fmt: skip
            knative = self.store.create(
                REVISIONS, namespace,
                {"metadata": {"name": revision.name, "labels": labels, "ownerReferences": [_owner(*owner)]},
                 "spec": {"containers": _containers(revision.template)}},
                manager=CONTROLLER_MANAGER,
            )  # fmt: skip
            owner = (REVISIONS, knative)
            rs_prefix = f"{revision.name}-deployment"
            isvc_labels["serving.knative.dev/revision"] = revision.name
        template_hash = generated_suffix() + generated_suffix()[:4]
        replica_set = self.store.create(
            REPLICA_SETS, namespace,
            {"metadata": {"name": f"{rs_prefix}-{template_hash}", "ownerReferences": [_owner(*owner)],
                          "labels": {**isvc_labels, "pod-template-hash": template_hash}},
             "spec": {"replicas": 1, "selector": {"matchLabels": {"pod-template-hash": template_hash}}}},
            manager=CONTROLLER_MANAGER,
        )  # fmt: skip
        revision.replica_set = replica_set["metadata"]["name"]
        pod = {
            "metadata": {
                "generateName": f"{revision.replica_set}-",
                "labels": {**isvc_labels, "pod-template-hash": template_hash},
                "ownerReferences": [_owner(REPLICA_SETS, replica_set)],
            },
            "spec": {
                "containers": _containers(revision.template, revision.model),
                **({"securityContext": revision.template["securityContext"]}
                   if "securityContext" in revision.template else {}),
            },
            "status": {"phase": "Pending"},
        }  # fmt: skip
        failed_on = owner if owner[0] == REVISIONS else (REPLICA_SETS, replica_set)
        self._create_pod(document, revision, pod, failed_on)

    def _create_pod(self, document: dict[str, Any], revision: Revision, pod: dict[str, Any],
                    failed_on: tuple[ResourceType, dict[str, Any]], retry: bool = False) -> None:  # fmt: skip
        """Create the pod through admission; a refusal is a FailedCreate event, retried like the RS controller."""
        namespace = document["metadata"]["namespace"]
        with self._lock:
            state = self._states.get((namespace, document["metadata"]["name"]))
            if self._stop.is_set() or state is None or state.uid != document["metadata"]["uid"]:
                return
            try:
                created = self.store.create(PODS, namespace, admit(self.store, PODS, namespace, pod),
                                            manager=CONTROLLER_MANAGER)  # fmt: skip
            except ApiStatusError as refusal:
                self._failed_create(document, revision, failed_on, refusal.message)
                timer = threading.Timer(self.pod_retry_s, self._create_pod,
                                        args=(document, revision, pod, failed_on, True))  # fmt: skip
                timer.daemon = True
                timer.start()
                return
        refresh_quota_status(self.store, namespace)
        self._run_pod(document, revision, created["metadata"]["name"])
        if retry:
            # The first attempt ran inside a reconcile; a later one must report its outcome itself.
            self._reconcile(namespace, document["metadata"]["name"])

    def _failed_create(self, document: dict[str, Any], revision: Revision,
                       failed_on: tuple[ResourceType, dict[str, Any]], message: str) -> None:  # fmt: skip
        kind, owner = failed_on
        if _mode(document) == "Knative":
            revision.failed_message = f'Revision "{revision.name}" failed with message: {message}.'
        else:
            revision.failed_message = "Deployment does not have minimum availability."
        _record_event(self.store, kind, owner, "FailedCreate", f"Error creating: {message}", "replicaset-controller")

    def _run_pod(self, document: dict[str, Any], revision: Revision, pod_name: str) -> None:
        """Schedule the pod as scripted: ready after a delay, or pending with a scheduler event."""
        metadata = document["metadata"]
        namespace = metadata["namespace"]
        # A scripted key matches a model exactly or as a prefix (an image repository before its digest).
        behaviour = next(
            (scripted for key, scripted in self._behaviours.items() if revision.model.startswith(key)), Behaviour()
        )
        if behaviour.never_ready:
            revision.failed_message = behaviour.event_message
            pod = self.store.get(PODS, namespace, pod_name)
            _record_event(self.store, PODS, pod, behaviour.event_reason, behaviour.event_message, "default-scheduler")
            return
        revision.failed_message = ""

        def become_ready() -> None:
            with self._lock:
                revision.ready = True
                try:
                    current = self.store.get(PODS, namespace, pod_name)
                except ApiStatusError:
                    return
                current["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
                self.store.update(PODS, namespace, pod_name, current, status_only=True, require_resource_version=False,
                                  manager="kubelet")  # fmt: skip
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


def _owner(kind: ResourceType, document: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": kind.api_version, "kind": kind.kind, "name": document["metadata"]["name"],
            "uid": document["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}  # fmt: skip


def _containers(template: dict[str, Any], image: str = "") -> list[dict[str, Any]]:
    """The predictor container as KServe builds it: the model's (or first container's) resources and securityContext."""
    source = template.get("model") or (template.get("containers") or [{}])[0]
    container: dict[str, Any] = {"name": "kserve-container", "image": image or str(source.get("image", ""))}
    for key in ("resources", "securityContext"):
        if key in source:
            container[key] = copy.deepcopy(source[key])
    return [container]


def _record_event(store: ObjectStore, kind: ResourceType, involved: dict[str, Any], reason: str, message: str,
                  component: str) -> None:  # fmt: skip
    """A Warning event on ``involved``; a repeat of the same one raises its ``count``, as the event recorder does."""
    metadata = involved["metadata"]
    namespace = metadata["namespace"]
    moment = now()
    events, _ = store.list(EVENTS, namespace)
    for event in events:
        same = event["involvedObject"].get("uid") == metadata["uid"] and (event["reason"], event["message"]) == (
            reason,
            message,
        )
        if same:
            event.update(count=event.get("count", 1) + 1, lastTimestamp=moment)
            store.update(EVENTS, namespace, event["metadata"]["name"], event, manager=component)
            return
    store.create(
        EVENTS, namespace,
        {"metadata": {"name": f"{metadata['name']}.{uuid.uuid4().hex[:16]}"},
         "involvedObject": {"kind": kind.kind, "namespace": namespace, "name": metadata["name"],
                            "uid": metadata["uid"], "apiVersion": kind.api_version,
                            "resourceVersion": metadata["resourceVersion"]},
         "reason": reason, "message": message, "type": "Warning", "count": 1,
         "firstTimestamp": moment, "lastTimestamp": moment,
         "source": {"component": component}, "reportingComponent": component, "reportingInstance": ""},
        manager=component,
    )  # fmt: skip
