"""The PrometheusRule's alerts parse and fire (and stay quiet) as intended, in Prometheus' own rule
engine: ``promtool check rules`` and ``promtool test rules`` on synthetic DCGM and
kube-state-metrics series."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.manifests.objects import Obj, of_kind
from tests.support.tools import skip_or_fail

NAMESPACE = "creativeflow-serving"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        skip_or_fail("promtool not found; install the Debian package prometheus")
    return found


@pytest.fixture(scope="module")
def rules_file(renders: dict[str, list[Obj]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    [rule] = of_kind(renders["overlays/prod"], "PrometheusRule")
    path = tmp_path_factory.mktemp("prometheus-rules") / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}), encoding="utf-8")
    return path


def test_rules_parse(promtool: str, rules_file: Path) -> None:
    completed = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, check=False, timeout=60
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "SUCCESS: 5 rules found" in completed.stdout


def alert(name: str, severity: str, labels: dict[str, str], summary: str, description: str) -> dict[str, Any]:
    return {
        "exp_labels": {"severity": severity, **labels},
        "exp_annotations": {"summary": summary, "description": description},
        "_name": name,
    }


def case(eval_time: str, name: str, *alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "eval_time": eval_time,
        "alertname": name,
        "exp_alerts": [{k: v for k, v in a.items() if k != "_name"} for a in alerts],
    }


H100 = {"modelName": "NVIDIA H100 80GB HBM3"}
SERIES = [
    # A saturated whole GPU, and a busy-but-fine one that must not alert.
    {"series": 'DCGM_FI_DEV_GPU_UTIL{UUID="GPU-hot",modelName="NVIDIA H100 80GB HBM3",gpu="0"}', "values": "97x40"},
    {"series": 'DCGM_FI_DEV_GPU_UTIL{UUID="GPU-ok",modelName="NVIDIA H100 80GB HBM3",gpu="1"}', "values": "60x40"},
    # A saturated MIG slice; GPU_UTIL is never reported for MIG.
    {
        "series": 'DCGM_FI_PROF_GR_ENGINE_ACTIVE{UUID="GPU-mig",GPU_I_ID="3",GPU_I_PROFILE="1g.10gb"}',
        "values": "0.96x40",
    },
    # Framebuffer: one GPU nearly full, one half full.
    {"series": 'DCGM_FI_DEV_FB_USED{UUID="GPU-full"}', "values": "79000x40"},
    {"series": 'DCGM_FI_DEV_FB_FREE{UUID="GPU-full"}', "values": "1000x40"},
    {"series": 'DCGM_FI_DEV_FB_USED{UUID="GPU-half"}', "values": "40000x40"},
    {"series": 'DCGM_FI_DEV_FB_FREE{UUID="GPU-half"}', "values": "40000x40"},
    # XID 79 (GPU fell off the bus) from minute 2 on one GPU; the other stays at 0.
    {"series": 'DCGM_FI_DEV_XID_ERRORS{UUID="GPU-xid",modelName="NVIDIA H100 80GB HBM3"}', "values": "0 0 79x38"},
    {"series": 'DCGM_FI_DEV_XID_ERRORS{UUID="GPU-ok",modelName="NVIDIA H100 80GB HBM3"}', "values": "0x40"},
    # A pending GPU pod, a pending CPU pod and a running GPU pod: only the first alerts.
    {
        "series": f'kube_pod_status_phase{{namespace="{NAMESPACE}",pod="image-classifier-predictor-1",'
        'phase="Pending"}',
        "values": "1x40",
    },
    {
        "series": f'kube_pod_container_resource_requests{{namespace="{NAMESPACE}",pod="image-classifier-predictor-1",'
        'container="kserve-container",resource="nvidia_com_mig_1g_10gb",unit="integer"}',
        "values": "1x40",
    },
    {"series": f'kube_pod_status_phase{{namespace="{NAMESPACE}",pod="cpu-job",phase="Pending"}}', "values": "1x40"},
    {
        "series": f'kube_pod_container_resource_requests{{namespace="{NAMESPACE}",pod="cpu-job",container="main",'
        'resource="cpu",unit="core"}',
        "values": "1x40",
    },
    {
        "series": f'kube_pod_status_phase{{namespace="{NAMESPACE}",pod="fraud-detector-predictor-1",phase="Pending"}}',
        "values": "0x40",
    },
    {
        "series": f'kube_pod_container_resource_requests{{namespace="{NAMESPACE}",pod="fraud-detector-predictor-1",'
        'container="kserve-container",resource="nvidia_com_gpu",unit="integer"}',
        "values": "1x40",
    },
]

GPU_SATURATED = alert(
    "GPUSaturated",
    "warning",
    {"UUID": "GPU-hot", **H100},
    "GPU GPU-hot (NVIDIA H100 80GB HBM3) above 90% utilisation for 15 minutes",
    "Inference on this GPU is saturated; add replicas or GPUs, or move models off time-sliced GPUs.",
)
MIG_SATURATED = alert(
    "MIGSliceSaturated",
    "warning",
    {"UUID": "GPU-mig", "GPU_I_ID": "3", "GPU_I_PROFILE": "1g.10gb"},
    "MIG slice 1g.10gb 3 on GPU GPU-mig above 90% busy for 15 minutes",
    "The slice's compute engine is saturated; scale out or move the model to a larger profile.",
)
MEMORY_FULL = alert(
    "GPUMemoryNearlyFull",
    "warning",
    {"UUID": "GPU-full"},
    "GPU GPU-full framebuffer above 95% for 10 minutes",
    "The next model load or batch may fail with CUDA out-of-memory; check co-scheduled pods on shared GPUs.",
)
XID = alert(
    "GPUXidError",
    "critical",
    {"UUID": "GPU-xid", **H100},
    "GPU GPU-xid reported XID error 79",
    "Look the XID code up in NVIDIA's XID catalogue; cordon the node if it repeats.",
)
PENDING = alert(
    "GPUPodsPending",
    "warning",
    {"namespace": NAMESPACE, "pod": "image-classifier-predictor-1"},
    f"Pod {NAMESPACE}/image-classifier-predictor-1 has waited 10 minutes for a GPU",
    "No node can fit its GPU request; check quota, node pool scale-up, MIG layout and taints.",
)


def test_alerts_fire_only_when_they_should(promtool: str, rules_file: Path) -> None:
    tests = {
        "rule_files": [rules_file.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": SERIES,
                "alert_rule_test": [
                    # Before the "for" durations have passed nothing fires ...
                    case("10m", "GPUSaturated"),
                    case("8m", "GPUMemoryNearlyFull"),
                    case("1m", "GPUXidError"),
                    case("5m", "GPUPodsPending"),
                    # ... afterwards exactly the unhealthy series alert.
                    case("25m", "GPUSaturated", GPU_SATURATED),
                    case("25m", "MIGSliceSaturated", MIG_SATURATED),
                    case("15m", "GPUMemoryNearlyFull", MEMORY_FULL),
                    case("3m", "GPUXidError", XID),
                    case("15m", "GPUPodsPending", PENDING),
                ],
            }
        ],
    }
    test_file = rules_file.parent / "rules-test.yaml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False), encoding="utf-8")
    completed = subprocess.run(
        [promtool, "test", "rules", str(test_file)], capture_output=True, text=True, check=False, timeout=60
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
