"""A local HTTP stand-in of the KFP v2beta1 REST API, for trigger tests.

It serves the calls the kfp client and our n8n workflows make to start runs
and recurring runs and to follow a run, checks every request body field by
field against the ``kfp_server_api`` models (unknown fields, wrong types,
missing required values → 400, as the real server's gRPC gateway does),
checks run parameters against the pipeline spec's inputs (inline, or of an
uploaded pipeline version the run references), and records every accepted
request. A run moves through the states a :class:`RunPlan` lists, one step
per ``GET`` of it, and is answered in the shape of the real server's runs.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kfp_server_api

_PRIMITIVES: dict[str, tuple[type, ...]] = {
    # int64 fields are typed str in the generated models; proto3 JSON parsing accepts numbers for them.
    "str": (str, int),
    "int": (int,),
    "bool": (bool,),
    "float": (int, float),
    "datetime": (str,),
    "object": (dict, list, str, int, float, bool),
}


class BodyError(ValueError):
    """A request body does not match the API model."""


def validate(value: Any, type_name: str, where: str) -> None:
    """Check ``value`` against a kfp_server_api type name, recursively."""
    if value is None:
        return
    if type_name in _PRIMITIVES:
        # bool is an int subclass in Python; JSON keeps them apart.
        mistaken_bool = isinstance(value, bool) and type_name not in ("bool", "object")
        if not isinstance(value, _PRIMITIVES[type_name]) or mistaken_bool:
            raise BodyError(f"{where}: expected {type_name}, got {type(value).__name__}")
        return
    if type_name.startswith("list["):
        if not isinstance(value, list):
            raise BodyError(f"{where}: expected a list")
        for index, item in enumerate(value):
            validate(item, type_name[5:-1], f"{where}[{index}]")
        return
    if type_name.startswith("dict("):
        if not isinstance(value, dict):
            raise BodyError(f"{where}: expected an object")
        inner = type_name[5:-1].split(", ", 1)[1]
        for key, item in value.items():
            validate(item, inner, f"{where}.{key}")
        return
    model = getattr(kfp_server_api, type_name)
    if not hasattr(model, "openapi_types"):
        return
    if hasattr(model, "allowable_values"):  # enums are strings
        if value not in model.allowable_values:
            raise BodyError(f"{where}: {value!r} is not one of {model.allowable_values}")
        return
    if not isinstance(value, dict):
        raise BodyError(f"{where}: expected an object of type {type_name}")
    by_json_key = {json_key: attribute for attribute, json_key in model.attribute_map.items()}
    for key, item in value.items():
        if key not in by_json_key:
            raise BodyError(f"{where}: unknown field {key!r} for {type_name}")
        validate(item, model.openapi_types[by_json_key[key]], f"{where}.{key}")


def _root_inputs(pipeline_spec: dict[str, Any]) -> dict[str, Any]:
    spec = pipeline_spec.get("pipeline_spec", pipeline_spec)
    inputs: dict[str, Any] = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    return inputs


def check_run_semantics(body: dict[str, Any], kind: str) -> None:
    """What the real server refuses beyond types: names, specs, parameters, schedules."""
    if not body.get("display_name"):
        raise BodyError(f"{kind}.display_name is required")
    if not body.get("pipeline_spec") and not body.get("pipeline_version_reference"):
        raise BodyError(f"{kind} needs pipeline_spec or pipeline_version_reference")
    if body.get("pipeline_spec"):
        inputs = _root_inputs(body["pipeline_spec"])
        parameters = (body.get("runtime_config") or {}).get("parameters") or {}
        unknown = set(parameters) - set(inputs)
        if unknown:
            raise BodyError(f"{kind}.runtime_config.parameters: unknown {sorted(unknown)}")
    if kind == "recurring_run":
        cron = ((body.get("trigger") or {}).get("cron_schedule") or {}).get("cron", "")
        periodic = (body.get("trigger") or {}).get("periodic_schedule")
        if not cron and not periodic:
            raise BodyError("recurring_run.trigger needs cron_schedule.cron or periodic_schedule")
        if cron and len(cron.split()) != 6:
            raise BodyError(f"recurring_run.trigger.cron_schedule.cron {cron!r} must have 6 fields")


# States after which a run does not change any more.
FINAL_STATES = ("SUCCEEDED", "SKIPPED", "FAILED", "CANCELED")
# What the real server puts in finished_at while a run is not finished.
_NOT_FINISHED = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class RunPlan:
    """The states the next created run goes through: ``states[0]`` when created, one step per ``GET``.

    ``tasks`` are the display names of the pipeline's tasks, listed in ``run_details`` once the run
    finished; on ``FAILED`` the last one failed with ``error`` (and so did the run).
    """

    states: tuple[str, ...]
    tasks: tuple[str, ...] = ()
    error: str = ""


@dataclass
class PipelineVersion:
    pipeline_id: str
    pipeline_version_id: str
    pipeline_spec: dict[str, Any]


@dataclass
class RecordedRequest:
    method: str
    path: str
    body: dict[str, Any] | None


@dataclass
class KfpApiState:
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    recurring_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    required_token: str | None = None
    # Uploaded pipeline versions by pipeline_version_id.
    pipeline_versions: dict[str, PipelineVersion] = field(default_factory=dict)
    # Plans for the next created runs, first in first out; a run without one stays PENDING.
    run_plans: deque[RunPlan] = field(default_factory=deque)
    plans_by_run: dict[str, RunPlan] = field(default_factory=dict)
    gets_by_run: dict[str, int] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _referenced_spec(body: dict[str, Any], state: KfpApiState) -> dict[str, Any] | None:
    """The spec of the pipeline version a run references; ``None`` for a run with an inline spec.

    Raises:
        LookupError: the version was never uploaded (the real server answers NotFound).
    """
    reference = body.get("pipeline_version_reference")
    if not reference or body.get("pipeline_spec"):
        return None
    version = state.pipeline_versions.get(reference.get("pipeline_version_id", ""))
    if version is None or version.pipeline_id != reference.get("pipeline_id"):
        raise LookupError(f"pipeline version {reference} not found")
    return version.pipeline_spec


def _advance(run: dict[str, Any], plan: RunPlan, step: int) -> None:
    """Move a run to ``plan.states[step]``, with the fields the real server fills as a run goes."""
    new_state = plan.states[min(step, len(plan.states) - 1)]
    if run["state"] == new_state:
        return
    now = _now()
    run["state"] = new_state
    run["state_history"].append({"update_time": now, "state": new_state})
    if new_state not in FINAL_STATES:
        return
    run["finished_at"] = now
    tasks = []
    for index, name in enumerate(plan.tasks):
        failed = new_state == "FAILED" and index == len(plan.tasks) - 1
        task_state = "FAILED" if failed else "SUCCEEDED"
        task = {
            "run_id": run["run_id"], "task_id": str(uuid.uuid4()), "display_name": name,
            "create_time": run["created_at"], "start_time": run["created_at"], "end_time": now,
            "state": task_state, "state_history": [{"update_time": now, "state": task_state}],
        }  # fmt: skip
        if failed:
            task["error"] = {"code": 2, "message": plan.error}
        tasks.append(task)
    run["run_details"]["task_details"] = tasks
    if new_state == "FAILED":
        run["error"] = {"code": 2, "message": plan.error}


def _new_run(body: dict[str, Any], plan: RunPlan | None) -> dict[str, Any]:
    """A created run as the server answers: the request's fields plus id, state, times and details."""
    now = _now()
    state = plan.states[0] if plan else "PENDING"
    return {
        **body,
        "run_id": str(uuid.uuid4()),
        "storage_state": "AVAILABLE",
        "service_account": body.get("service_account") or "pipeline-runner",
        "created_at": now,
        "scheduled_at": now,
        "finished_at": _NOT_FINISHED,
        "state": state,
        "state_history": [{"update_time": now, "state": state}],
        "run_details": {"task_details": []},
    }


def _handler(state: KfpApiState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def _reply(self, status: int, document: dict[str, Any]) -> None:
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _authorized(self) -> bool:
            if state.required_token is None:
                return True
            return self.headers.get("Authorization") == f"Bearer {state.required_token}"

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            with state.lock:
                state.requests.append(RecordedRequest("GET", url.path, None))
            if url.path == "/apis/v2beta1/healthz":
                self._reply(200, {"multi_user": False})
                return
            if not self._authorized():
                self._reply(401, {"error": "unauthenticated", "code": 16})
                return
            if url.path == "/apis/v2beta1/experiments":
                wanted = None
                query = parse_qs(url.query)
                if "filter" in query:
                    predicates = json.loads(query["filter"][0]).get("predicates", [])
                    wanted = next((p.get("string_value") or p.get("stringValue") for p in predicates), None)
                found = [e for e in state.experiments.values() if wanted in (None, e["display_name"])]
                self._reply(200, {"experiments": found, "total_size": len(found)})
                return
            if url.path.startswith("/apis/v2beta1/runs/"):
                run_id = url.path.rsplit("/", 1)[1]
                with state.lock:
                    run = state.runs.get(run_id)
                    if run is not None and run_id in state.plans_by_run:
                        state.gets_by_run[run_id] = state.gets_by_run.get(run_id, 0) + 1
                        _advance(run, state.plans_by_run[run_id], state.gets_by_run[run_id])
                    answer = json.loads(json.dumps(run)) if run else None
                if answer is None:
                    self._reply(404, {"error": f"run {run_id} not found", "code": 5})
                    return
                validate(answer, "V2beta1Run", "run")  # the stand-in's own answers keep to the API model
                self._reply(200, answer)
                return
            self._reply(404, {"error": f"no route {url.path}", "code": 5})

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                self._reply(400, {"error": "body is not JSON", "code": 3})
                return
            if not self._authorized():
                self._reply(401, {"error": "unauthenticated", "code": 16})
                return
            routes = {
                "/apis/v2beta1/experiments": ("V2beta1Experiment", "experiment"),
                "/apis/v2beta1/runs": ("V2beta1Run", "run"),
                "/apis/v2beta1/recurringruns": ("V2beta1RecurringRun", "recurring_run"),
            }
            if url.path not in routes:
                self._reply(404, {"error": f"no route {url.path}", "code": 5})
                return
            model, kind = routes[url.path]
            try:
                validate(body, model, kind)
                if kind == "experiment" and not body.get("display_name"):
                    raise BodyError("experiment.display_name is required")
                if kind in ("run", "recurring_run"):
                    with state.lock:
                        referenced = _referenced_spec(body, state)
                    check_run_semantics(body if referenced is None else {**body, "pipeline_spec": referenced}, kind)
            except BodyError as error:
                self._reply(400, {"error": str(error), "code": 3})
                return
            except LookupError as error:
                self._reply(404, {"error": str(error), "code": 5})
                return
            with state.lock:
                state.requests.append(RecordedRequest("POST", url.path, body))
                if kind == "run":
                    plan = state.run_plans.popleft() if state.run_plans else None
                    created = _new_run(body, plan)
                    state.runs[created["run_id"]] = created
                    if plan is not None:
                        state.plans_by_run[created["run_id"]] = plan
                    created = json.loads(json.dumps(created))
                    validate(created, "V2beta1Run", "run")  # the stand-in's own answers keep to the API model
                else:
                    created = {**body, f"{kind}_id": str(uuid.uuid4())}
                if kind == "experiment":
                    state.experiments[created["experiment_id"]] = created
                elif kind == "recurring_run":
                    created["status"] = "ENABLED"
                    state.recurring_runs[created["recurring_run_id"]] = created
            self._reply(200, created)

    return Handler


class KfpApiStandIn:
    """Run the stand-in on 127.0.0.1 in a background thread."""

    def __init__(self) -> None:
        self.state = KfpApiState()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def upload_pipeline_version(self, pipeline_spec: dict[str, Any]) -> PipelineVersion:
        """Store a pipeline version as uploading a compiled pipeline does; runs may then reference it."""
        version = PipelineVersion(str(uuid.uuid4()), str(uuid.uuid4()), pipeline_spec)
        with self.state.lock:
            self.state.pipeline_versions[version.pipeline_version_id] = version
        return version

    def __enter__(self) -> KfpApiStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
