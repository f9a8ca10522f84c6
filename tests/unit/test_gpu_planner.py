from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiserving.steps.fleet_plan import PLAN_FILES, plan_fleet_files
from gpu_planning import render
from gpu_planning.exact import solve_exact
from gpu_planning.fleet import Fleet, Inventory
from gpu_planning.heuristic import plan_heuristic, used_gpus
from gpu_planning.plan import Assignment, FleetPlan, GpuLayout, MigInstance, plan_fleet
from gpu_planning.problem import build_problem, lower_bound
from gpu_planning.refine import refine
from serving_core.errors import InvalidInputError


def fleet(*models: dict[str, Any]) -> Fleet:
    return Fleet.model_validate({"models": list(models)})


def inventory(*nodes: dict[str, Any], quotas: dict[str, Any] | None = None) -> Inventory:
    return Inventory.model_validate({"nodes": list(nodes), "quotas": quotas or {}})


def test_small_models_share_one_a100_as_mig_slices_and_the_big_one_gets_a_whole_gpu() -> None:
    models = fleet(
        {"name": "big", "memory_mib": 60_000, "may_share": False},
        {"name": "ranker", "memory_mib": 9_000, "replicas": 2, "latency_class": "realtime"},
        {"name": "embedder", "memory_mib": 30_000, "latency_class": "realtime"},
    )
    nodes = inventory({"name": "gpu-a", "gpu": "A100-80GB", "gpus": 2}, {"name": "gpu-t4", "gpu": "T4", "gpus": 1})

    plan = plan_fleet(models, nodes)

    assert plan == FleetPlan(
        solver="heuristic (first-fit decreasing, ruin and recreate), proven optimal",
        gpus_used=2,
        gpus_total=3,
        lower_bound=2,
        assignments=[
            Assignment(model="big", namespace="ml-serving", replica=0, node="gpu-a", gpu=0, unit="whole",
                       resource="nvidia.com/gpu"),
            Assignment(model="ranker", namespace="ml-serving", replica=0, node="gpu-a", gpu=1, unit="mig",
                       resource="nvidia.com/mig-1g.10gb", mig_profile="1g.10gb"),
            Assignment(model="ranker", namespace="ml-serving", replica=1, node="gpu-a", gpu=1, unit="mig",
                       resource="nvidia.com/mig-1g.10gb", mig_profile="1g.10gb"),
            Assignment(model="embedder", namespace="ml-serving", replica=0, node="gpu-a", gpu=1, unit="mig",
                       resource="nvidia.com/mig-3g.40gb", mig_profile="3g.40gb"),
        ],
        gpus=[
            GpuLayout(node="gpu-a", gpu=0, product="A100-80GB", mode="whole", models=["big"], memory_mib=81920,
                      used_mib=60000),
            GpuLayout(node="gpu-a", gpu=1, product="A100-80GB", mode="mig", memory_mib=81920, used_mib=48000,
                      models=["ranker", "ranker", "embedder"],
                      mig=[MigInstance(profile="3g.40gb", start=0, memory_slices=4, model="embedder"),
                           MigInstance(profile="1g.10gb", start=4, memory_slices=1, model="ranker"),
                           MigInstance(profile="1g.10gb", start=5, memory_slices=1, model="ranker")]),
            GpuLayout(node="gpu-t4", gpu=0, product="T4", mode="idle", memory_mib=15360),
        ],
    )  # fmt: skip
    assert render.mig_parted_config(plan) == {
        "version": "v1",
        "mig-configs": {
            "all-disabled": [{"devices": "all", "mig-enabled": False}],
            "plan-gpu-a": [
                {"devices": [0], "mig-enabled": False},
                {"devices": [1], "mig-enabled": True, "mig-devices": {"1g.10gb": 2, "3g.40gb": 1}},
            ],
        },
    }
    assert render.node_labels(plan) == {
        "gpu-a": {"nvidia.com/mig.config": "plan-gpu-a", "nvidia.com/device-plugin.config": "mig-mixed"},
        "gpu-t4": {"nvidia.com/mig.config": "all-disabled"},
    }
    assert render.deploy_fleet_models(models, plan)[1] == {
        "model_uri": "", "runtime": "python", "image": "", "isvc_name": "ranker", "gpu_count": 1,
        "gpu_resource": "nvidia.com/mig-1g.10gb", "canary_percent": 10,
    }  # fmt: skip


def test_batch_models_time_slice_and_the_device_plugin_config_says_how_many() -> None:
    models = fleet({"name": "nightly", "memory_mib": 4_000, "replicas": 3, "latency_class": "batch"})
    plan = plan_fleet(models, inventory({"name": "l4", "gpu": "L4", "gpus": 2}))

    assert [(layout.mode, layout.models) for layout in plan.gpus] == [
        ("time-sliced", ["nightly", "nightly", "nightly"]),
        ("idle", []),
    ]
    assert render.device_plugin_configs(plan) == {
        "ts-3": {
            "version": "v1",
            "flags": {"migStrategy": "none"},
            "sharing": {
                "timeSlicing": {
                    "renameByDefault": True,
                    "failRequestsGreaterThanOne": True,
                    "resources": [{"name": "nvidia.com/gpu", "replicas": 3}],
                }
            },
        }
    }
    assert render.deployment_settings(models, plan) == {
        "nightly": {
            "name": "nightly",
            "namespace": "ml-serving",
            "gpu": {"count": 1, "sharing": "time-sliced", "products": ["NVIDIA-L4"]},
            "autoscaling": {"min_replicas": 3, "max_replicas": 3},
        }
    }


def test_taints_selectors_and_quotas_are_respected() -> None:
    models = fleet(
        {"name": "a", "namespace": "team-a", "memory_mib": 10_000, "may_share": False, "replicas": 2},
        {"name": "b", "memory_mib": 10_000, "may_share": False, "node_selector": {"pool": "l40s"},
         "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]},
    )  # fmt: skip
    nodes = inventory(
        {"name": "tainted", "gpu": "L40S", "gpus": 2, "labels": {"pool": "l40s"},
         "taints": [{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}]},
        {"name": "open", "gpu": "L4", "gpus": 4},
    )  # fmt: skip

    placed = {(a.model, a.node) for a in plan_fleet(models, nodes).assignments}
    assert placed == {("a", "open"), ("b", "tainted")}

    with pytest.raises(InvalidInputError) as error:
        plan_fleet(models, nodes.model_copy(update={"quotas": {"team-a": {"requests.nvidia.com/gpu": 1}}}))
    assert "a: 2 replica(s) of 10000 MiB; nvidia.com/gpu: namespace team-a quota has 1 of 1 left" in str(error.value)


def test_bad_inventories_and_fleets_are_refused_with_the_value_and_the_fix() -> None:
    with pytest.raises(InvalidInputError, match=r"unknown GPU product 'A10'"):
        inventory({"name": "n", "gpu": "A10", "gpus": 1})
    with pytest.raises(InvalidInputError, match=r"MIG layout \['4g.20gb', '4g.20gb'\] is impossible on A100-40GB"):
        inventory({"name": "n", "gpu": "A100-40GB", "gpus": 1, "mig_layout": ["4g.20gb", "4g.20gb"]})
    with pytest.raises(InvalidInputError) as error:
        plan_fleet(
            fleet({"name": "llm", "memory_mib": 150_000}), inventory({"name": "h", "gpu": "H200-141GB", "gpus": 8})
        )
    assert str(error.value) == (
        "model llm needs 150000 MiB per replica, more than any GPU it may run on (largest: H200-141GB on h, "
        "143771 MiB)\nHint: quantize or shard the model, lower --max-batch-size, or add a larger GPU"
    )
    with pytest.raises(InvalidInputError) as error:
        plan_fleet(
            fleet({"name": "x", "memory_mib": 20_000, "replicas": 3, "may_share": False}),
            inventory({"name": "t", "gpu": "L4", "gpus": 2}),
        )
    assert str(error.value).startswith(
        "the fleet does not fit the cluster (2 GPUs); not placed:\n"
        "  - x: 3 replica(s) of 20000 MiB; nvidia.com/gpu: no free unit left on the nodes it may use\n"
    )


def test_a_fixed_mig_layout_is_filled_not_changed() -> None:
    nodes = inventory({"name": "m", "gpu": "A100-40GB", "gpus": 1, "mig_layout": ["3g.20gb", "2g.10gb", "1g.5gb"]})
    plan = plan_fleet(fleet({"name": "s", "memory_mib": 4_000}, {"name": "t", "memory_mib": 18_000}), nodes)

    assert plan.gpus[0].mig == [
        MigInstance(profile="3g.20gb", start=0, memory_slices=4, model="t"),
        MigInstance(profile="2g.10gb", start=4, memory_slices=2, model=None),
        MigInstance(profile="1g.5gb", start=6, memory_slices=1, model="s"),
    ]


def random_instance(rng: random.Random) -> tuple[Fleet, Inventory]:
    models = [
        {
            "name": f"m{i}",
            "memory_mib": rng.choice([2_000, 4_500, 9_000, 15_000, 19_000, 30_000, 45_000, 70_000]),
            "replicas": rng.randint(1, 3),
            "latency_class": rng.choice(["realtime", "standard", "batch"]),
            "may_share": rng.random() < 0.8,
        }
        for i in range(rng.randint(2, 5))
    ]
    products = ["T4", "L4", "L40S", "A100-40GB", "A100-80GB", "H100-80GB", "H200-141GB"]
    nodes = [{"name": f"n{i}", "gpu": rng.choice(products), "gpus": rng.randint(1, 2)} for i in range(3)]
    nodes.append({"name": "big", "gpu": "H200-141GB", "gpus": 4})
    return Fleet.model_validate({"models": models}), Inventory.model_validate({"nodes": nodes})


@pytest.mark.parametrize("seed", range(40))
def test_the_heuristic_alone_and_the_planner_match_the_proven_optimum_on_small_instances(seed: int) -> None:
    models, nodes = random_instance(random.Random(seed))
    problem = build_problem(models, nodes)
    exact = solve_exact(problem, time_limit_s=20, workers=2)
    if exact.infeasible:
        with pytest.raises(InvalidInputError, match="the fleet does not fit the cluster"):
            plan_fleet(models, nodes)
        return
    heuristic, _failures = plan_heuristic(problem)
    plan = plan_fleet(models, nodes)

    assert exact.optimal
    assert (heuristic is not None and used_gpus(heuristic), plan.gpus_used) == (exact.gpus_used, exact.gpus_used)
    assert plan.lower_bound <= plan.gpus_used
    assert sorted((a.model, a.replica) for a in plan.assignments) == sorted(
        (m.name, r) for m in models.models for r in range(m.replicas)
    )


def test_the_lower_bound_counts_compute_and_memory_apart_so_a_full_mig_gpu_is_one_gpu() -> None:
    # 3g.40gb + 4 x 1g.10gb fill an A100 exactly: 7 of 7 compute slices, 8 of 8 memory slices. Summing each
    # instance's larger part (4/8 + 4 x 1/7) would claim 2 GPUs.
    models = fleet(
        {"name": "big", "memory_mib": 30_000, "latency_class": "realtime"},
        {"name": "small", "memory_mib": 5_000, "replicas": 4, "latency_class": "realtime"},
    )
    nodes = inventory({"name": "a", "gpu": "A100-80GB", "gpus": 2})

    assert lower_bound(build_problem(models, nodes)) == 1
    plan = plan_fleet(models, nodes)
    assert (plan.gpus_used, plan.lower_bound, plan.solver) == (
        1,
        1,
        "heuristic (first-fit decreasing, ruin and recreate), proven optimal",
    )
    assert plan.gpus[0].mig == [
        *[MigInstance(profile="1g.10gb", start=start, memory_slices=1, model="small") for start in range(4)],
        MigInstance(profile="3g.40gb", start=4, memory_slices=4, model="big"),
    ]


def test_a_share_that_would_lock_a_node_out_of_mig_gives_way_to_a_mig_slice() -> None:
    # The 70 GB model takes a little less of the H200 as a time-sliced share (0.49) than as 3g.71gb (0.5), but a
    # share makes the node time-sliced and the realtime model then needs a GPU of its own.
    models = fleet(
        {"name": "large", "memory_mib": 70_000, "latency_class": "standard"},
        {"name": "realtime", "memory_mib": 2_000, "latency_class": "realtime"},
    )
    nodes = inventory({"name": "h200", "gpu": "H200-141GB", "gpus": 2}, {"name": "h100", "gpu": "H100-80GB", "gpus": 1})

    solution, failures = plan_heuristic(build_problem(models, nodes))

    assert failures == {}
    assert solution is not None
    assert used_gpus(solution) == 1


def test_plan_files_are_written_together_and_not_at_all_on_a_bad_fleet(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump({"models": [{"name": "a", "memory_mib": 5000}]}))
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"nodes": [{"name": "n", "gpu": "L4", "gpus": 1}]}))
    (tmp_path / "too-big.yaml").write_text(yaml.safe_dump({"models": [{"name": "a", "memory_mib": 50_000}]}))

    plan_fleet_files(tmp_path / "fleet.yaml", tmp_path / "inventory.yaml", tmp_path / "plan")
    with pytest.raises(InvalidInputError, match="model a needs 50000 MiB"):
        plan_fleet_files(tmp_path / "too-big.yaml", tmp_path / "inventory.yaml", tmp_path / "refused")

    assert sorted(path.name for path in (tmp_path / "plan").iterdir()) == sorted(PLAN_FILES)
    assert not (tmp_path / "refused").exists()
    assert "![GPU layout per node](fleet-plan.svg)" in (tmp_path / "plan" / "report.md").read_text()


def test_ruin_and_recreate_frees_a_gpu_first_fit_decreasing_leaves_in_use() -> None:
    # A fleet from benchmarks/fleet_planning.py's generator (seed 285): every first-fit-decreasing strategy ends
    # on 5 GPUs; taking the models off a few GPUs and placing them again reaches the lower bound, 4.
    sizes = [
        (9012, 1, "standard"), (7506, 1, "batch"), (8126, 1, "standard"), (5232, 1, "standard"), (4316, 1, "batch"),
        (22643, 2, "standard"), (9515, 3, "batch"), (50103, 1, "realtime"), (5157, 1, "realtime"),
        (5929, 1, "batch"), (4290, 1, "realtime"), (8912, 2, "standard"), (1644, 3, "batch"),
        (26647, 1, "standard"), (6561, 2, "batch"), (8300, 1, "batch"), (5392, 1, "standard"),
    ]  # fmt: skip
    models = fleet(
        *(
            {"name": f"m{index}", "memory_mib": need, "replicas": replicas, "latency_class": latency}
            for index, (need, replicas, latency) in enumerate(sizes)
        )
    )
    nodes = inventory(
        {"name": "big-0", "gpu": "H200-141GB", "gpus": 2},
        {"name": "big-1", "gpu": "H100-80GB", "gpus": 1},
        {"name": "n2", "gpu": "T4", "gpus": 2},
        {"name": "n3", "gpu": "L4", "gpus": 8},
    )
    problem = build_problem(models, nodes)
    first_fit, _failures = plan_heuristic(problem)
    assert first_fit is not None

    refined = refine(problem, first_fit)
    plan = plan_fleet(models, nodes)

    assert (used_gpus(first_fit), used_gpus(refined), lower_bound(problem)) == (5, 4, 4)
    assert (plan.gpus_used, plan.solver) == (4, "heuristic (first-fit decreasing, ruin and recreate), proven optimal")
    # Every replica is placed exactly once, each model in one resource.
    assert sorted(len(placed) for placed in refined) == sorted(replicas for _need, replicas, _latency in sizes)
    assert all(len({unit.resource for _gpu, unit in placed}) == 1 for placed in refined)
