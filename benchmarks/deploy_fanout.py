"""Fan-out benchmark: deploy-fleet's per-model deploy step and its exit handler for N models, on the test API server.

Targets (issue 16): at most 5 API writes per model; time linear in N (50 models vs 10).

The full pipeline through the KFP local runner (resolve, package, verify, build and push per model, on real MLflow
and a registry) takes minutes per model on a 2-core machine, so this benchmark runs the library steps deploy-fleet's
tasks call against the API server: ``deploy_step`` for each model, 4 at once (the pipeline's ParallelFor
``parallelism=4``), then the exit handler's ``fleet_rollback_step`` once over the list. Three runs per fleet size:

- ``first``: a fleet that is not deployed yet (every InferenceService created), the run succeeds;
- ``update``: new versions of every model (a 10 % canary each: history ConfigMap + replace), the run succeeds;
- ``failed``: newer versions again, then the run fails, so the exit handler rolls back every canary it started.

Writes (create, update, patch, delete) and all requests are counted from the test API server's request log; the
controller simulator (KServe's stand-in) writes into the store directly and is not counted. Pods become ready
0.05 s after the simulator reconciles (0.1 s), as in the tests. Each fleet size gets a fresh test API server, which
runs in this process (its threads share the interpreter with the steps).

    .venv/bin/python -m benchmarks.deploy_fanout                  # 10 and 50 models
    .venv/bin/python -m benchmarks.deploy_fanout --sizes 5 20
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiserving.steps.deploy import DeployParameters, deploy_step
from aiserving.steps.fleet_rollback import fleet_rollback_step
from inference_services.isvc_api import InferenceServiceApi
from model_packaging.manifest import WRAPPER_SETTINGS_FILE, ModelFormat, PackageManifest, SourceRef, TensorSpec
from tests.support.artifacts import FakeArtifact
from tests.support.kube_api.fixtures import KubeTestCluster, fresh_namespace, running_cluster
from tests.support.kube_api.request_log import RequestRecord

WRITE_VERBS = ("create", "update", "patch", "delete")
PARALLELISM = 4
"""deploy-fleet's ParallelFor parallelism (pipelines/deploy_fleet.py)."""
DIGEST = "sha256:" + "d" * 64


def write_package(root: Path) -> Path:
    """A Python-wrapper package as package-model writes it; every model of the fleet deploys this one."""
    root.mkdir(parents=True)
    PackageManifest(
        runtime="python", model_name="fleet", model_format=ModelFormat(name="mlflow"), protocol_version="v2",
        source_flavor="sklearn", conversion="none",
        inputs=[TensorSpec(name="input_0", datatype="FP32", shape=[-1, 4])],
        outputs=[TensorSpec(name="output_0", datatype="INT64", shape=[-1])],
        max_batch_size=32, instance_kind="gpu",
        source=SourceRef(location="models:/fleet/1", lineage_digest=DIGEST, registered_name="fleet",
                         registered_version="1", run_id="0" * 32),
        package_digest=DIGEST,
    ).write(root)  # fmt: skip
    settings = {"model_name": "fleet", "max_batch_size": 32, "max_latency_ms": 5, "protocol": "v2"}
    (root / WRAPPER_SETTINGS_FILE).write_text(json.dumps(settings), encoding="utf-8")
    return root


def image(model: str, version: str) -> str:
    digest = hashlib.sha256(f"{model}:{version}".encode()).hexdigest()
    return f"registry.example.com/models/{model}@sha256:{digest}"


def fleet_models(size: int) -> list[dict[str, Any]]:
    """The deploy-fleet ``models`` list: a mix of the resources plan-fleet hands out."""
    resources = ["nvidia.com/mig-1g.10gb", "nvidia.com/gpu.shared", "nvidia.com/gpu", "nvidia.com/mig-3g.40gb"]
    return [
        {"model_uri": f"models:/m{index}/1", "isvc_name": f"m{index}", "gpu_count": 1,
         "gpu_resource": resources[index % len(resources)], "canary_percent": 10}
        for index in range(size)
    ]  # fmt: skip


def deploy_run(
    cluster: KubeTestCluster, package: Path, out: Path, namespace: str, models: list[dict[str, Any]], run: str, *,
    fail: bool,
) -> dict[str, Any]:  # fmt: skip
    """One deploy-fleet run: every model's deploy step (4 at once), then the exit handler; requests counted."""
    get_ms = request_latency_ms(cluster, namespace, models[0]["isvc_name"])
    mark = cluster.server.log.mark()
    started = time.perf_counter()

    def deploy_one(item: dict[str, Any]) -> None:
        parameters = DeployParameters(
            image_ref=image(item["isvc_name"], run), image_format="modelcar", isvc_name=item["isvc_name"],
            namespace=namespace, deployment_mode="knative", gpu_count=item["gpu_count"],
            gpu_resource=item["gpu_resource"], canary_percent=item["canary_percent"], deployment_overrides={},
            target="cluster", wait_timeout_s=60, pipeline_run=run,
        )  # fmt: skip
        task = out / run / item["isvc_name"]
        deploy_step(
            parameters, package=FakeArtifact(str(package)), inference_service=FakeArtifact(str(task / "isvc")),
            manifest=FakeArtifact(str(task / "manifest.yaml")),
        )  # fmt: skip

    with ThreadPoolExecutor(PARALLELISM) as pool:
        list(pool.map(deploy_one, models))
    deployed_s = time.perf_counter() - started
    state = "FAILED" if fail else "SUCCEEDED"
    summary = fleet_rollback_step(
        models, namespace, "cluster", run, state, "a later task failed" if fail else "",
        FakeArtifact(str(out / run / "report.md")),
    )  # fmt: skip
    total_s = time.perf_counter() - started
    records = cluster.server.log.since(mark)
    per_model, unattributed = writes_per_model(records, [item["isvc_name"] for item in models])
    kinds = Counter(f"{record.verb} {record.resource}" for record in records if record.verb in WRITE_VERBS)
    return {
        "run": run,
        "models": len(models),
        "deploy_s": round(deployed_s, 2),
        "total_s": round(total_s, 2),
        "s_per_model": round(total_s / len(models), 3),
        "writes": sum(per_model.values()) + unattributed,
        "writes_unattributed": unattributed,
        "writes_per_model_max": max(per_model.values()),
        "writes_per_model_mean": round(sum(per_model.values()) / len(models), 2),
        "write_kinds": dict(kinds),
        "requests_per_model": round(len(records) / len(models), 1),
        "get_ms_before": round(get_ms, 1),
        "exit_handler": summary,
    }


def request_latency_ms(cluster: KubeTestCluster, namespace: str, name: str, count: int = 20) -> float:
    """The median time of one GET of an InferenceService: how fast the test API server answers right now."""
    api = InferenceServiceApi(cluster.clients(), namespace)
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        api.find(name)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def writes_per_model(records: list[RequestRecord], names: list[str]) -> tuple[Counter[str], int]:
    """Writes per model (its InferenceService and its ``<name>-...`` history ConfigMap), and writes left over.

    The log is in RBAC terms, where a create names no object. A create that succeeded made one object, so when
    the successful creates of a resource are one per model, each model gets one; otherwise they stay unattributed.
    """
    per_model: Counter[str] = Counter({name: 0 for name in names})
    unattributed = 0
    creates: Counter[str] = Counter()
    for record in records:
        if record.verb not in WRITE_VERBS:
            continue
        if not record.name:
            if record.verb == "create" and 200 <= record.status < 300:
                creates[record.resource] += 1
            else:
                unattributed += 1
            continue
        owner = next((name for name in names if record.name == name or record.name.startswith(name + "-")), None)
        if owner is None:
            unattributed += 1
        else:
            per_model[owner] += 1
    for count in creates.values():
        if count == len(names):
            per_model.update(names)
        else:
            unattributed += count
    return per_model, unattributed


@contextlib.contextmanager
def test_cluster(state_dir: Path) -> Iterator[KubeTestCluster]:
    yield from running_cluster(state_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--json", help="write every row here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    rows = []
    for size in args.sizes:
        # A fresh test API server per size, so each size starts from the same empty store and watch history.
        with tempfile.TemporaryDirectory(prefix="deploy-fanout-") as tmp, test_cluster(Path(tmp)) as cluster:
            os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
            package = write_package(Path(tmp) / "package")
            # Warm up (imports, CRD schemas, the simulator's first reconcile) outside the timed runs.
            warm = fresh_namespace(cluster)
            deploy_run(cluster, package, Path(tmp) / warm, warm, fleet_models(2), "first", fail=False)
            namespace = fresh_namespace(cluster)
            models = fleet_models(size)
            for run, fail in (("first", False), ("update", False), ("failed", True)):
                row = deploy_run(cluster, package, Path(tmp) / namespace, namespace, models, run, fail=fail)
                rows.append(row)
                print(json.dumps(row), flush=True)
    smallest, largest = min(args.sizes), max(args.sizes)
    for run in ("first", "update", "failed"):
        small = next(row for row in rows if row["run"] == run and row["models"] == smallest)
        large = next(row for row in rows if row["run"] == run and row["models"] == largest)
        print(
            f"{run:7s} {smallest} models {small['total_s']:6.2f} s, {largest} models {large['total_s']:6.2f} s: "
            f"time ratio {large['total_s'] / small['total_s']:.2f} for {largest / smallest:g}x the models "
            f"(per model {small['s_per_model']:.3f} -> {large['s_per_model']:.3f} s, "
            f"{large['s_per_model'] / small['s_per_model']:.2f}x; linear: 1.00x); "
            f"writes per model max {max(small['writes_per_model_max'], large['writes_per_model_max'])} (target <= 5); "
            f"requests per model {small['requests_per_model']:g} -> {large['requests_per_model']:g}; "
            f"median GET before the run {small['get_ms_before']:g} -> {large['get_ms_before']:g} ms"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
