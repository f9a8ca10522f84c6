"""CP-SAT neighbourhoods (gpu_planning.lns): solving a few GPUs of a plan again frees what ruin and recreate keeps."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml

from gpu_planning.exact import Scope, solve_exact
from gpu_planning.fleet import Fleet, Inventory
from gpu_planning.heuristic import Solution, plan_heuristic, used_gpus
from gpu_planning.lns import improve
from gpu_planning.problem import SHARED, WHOLE, Problem, build_problem, lower_bound
from gpu_planning.refine import refine


def _problem() -> Problem:
    models = [{"name": f"big-{index}", "memory_mib": 40_000, "latency_class": "batch"} for index in range(2)]
    models += [{"name": f"small-{index}", "memory_mib": 2_000, "latency_class": "batch"} for index in range(14)]
    models += [{"name": "alone", "memory_mib": 30_000, "may_share": False}]
    nodes = [
        {"name": "shared", "gpu": "H100-80GB", "gpus": 3, "allow_mig": False},
        {"name": "other", "gpu": "A100-40GB", "gpus": 1, "allow_time_slicing": False},
    ]
    return build_problem(Fleet.model_validate({"models": models}), Inventory.model_validate({"nodes": nodes}))


def _unbalanced(problem: Problem) -> Solution:
    """Both large models on GPU 0 (its memory full, 2 of 8 shares), the small ones on GPUs 1 and 2 (8 + 6 shares)."""
    share = {m: problem.options[m][0][SHARED] for m in range(16)}
    solution: Solution = [[(0, share[m])] for m in range(2)]
    solution += [[(1 if m < 10 else 2, share[m])] for m in range(2, 16)]
    solution.append([(3, problem.options[16][3][WHOLE])])
    return solution


def _check(problem: Problem, solution: Solution) -> None:
    """Every replica placed once in one resource; no time-sliced GPU over its product's shares or memory."""
    models = problem.fleet.models
    assert [len(placed) for placed in solution] == [model.replicas for model in models]
    assert all(len({unit.resource for _g, unit in placed}) == 1 for placed in solution)
    shares = Counter(g for placed in solution for g, unit in placed if unit.kind == "time-sliced")
    memory: Counter[int] = Counter()
    for m, placed in enumerate(solution):
        for g, unit in placed:
            if unit.kind == "time-sliced":
                memory[g] += models[m].memory_mib
    gpus = problem.gpus
    assert all(count <= gpus[g].product.max_time_slices for g, count in shares.items()), shares
    assert all(need <= gpus[g].product.memory_mib for g, need in memory.items()), memory


def test_a_step_mixes_large_and_small_models_where_gpus_filled_by_one_kind_waste_a_gpu() -> None:
    problem = _problem()
    start = _unbalanced(problem)
    _check(problem, start)

    improved = improve(problem, start)

    _check(problem, improved)
    assert (used_gpus(start), used_gpus(improved), lower_bound(problem)) == (4, 3, 3)
    assert improved[16] == start[16]  # the whole-GPU model was outside every step's reach and stayed
    per_gpu = Counter((g, problem.fleet.models[m].name.split("-")[0]) for m, placed in enumerate(improved[:16])
                      for g, _unit in placed)  # fmt: skip
    assert sorted(per_gpu.values()) == [1, 1, 7, 7]  # one large model and seven small ones on each shared GPU
    assert start == _unbalanced(problem)  # the input plan is not changed


def test_a_scoped_solve_places_only_the_replicas_in_its_scope_on_its_gpus() -> None:
    problem = _problem()
    start = _unbalanced(problem)
    # GPUs 0 and 1 again; small-8 (on GPU 2) is outside, so is the whole-GPU model.
    scope = Scope(
        gpus=frozenset({0, 1}),
        replicas={0: 1, 1: 1, **{m: 1 for m in range(2, 10)}},
        resources={},
        node_modes={"shared": True, "other": False},
        quota_used={("ml-serving", SHARED): 6, ("ml-serving", WHOLE): 1},
        emptied=0,
    )

    result = solve_exact(problem, time_limit_s=5.0, hint=start, scope=scope, deterministic=True)

    assert result.solution is not None
    assert [placed for m, placed in enumerate(result.solution) if m not in scope.replicas] == [[]] * 7
    placed_on = Counter(g for m in scope.replicas for g, _unit in result.solution[m])
    # 10 shares need two GPUs of 8; the step leaves as few replicas as it can on GPU 0 (two: 8 shares on GPU 1)
    assert placed_on == Counter({1: 8, 0: 2})


def test_a_step_may_open_an_idle_gpu_so_that_two_part_used_gpus_move_onto_it() -> None:
    # Eight 5 GB models share two L4s (4 shares each) and the H100 a 75 GB model leaves 6.5 GB of: three GPUs.
    # No placement on those three does better; the H100's idle second GPU holds all eight at once.
    models = [{"name": "large", "memory_mib": 75_000, "latency_class": "batch"}]
    models += [{"name": f"small-{index}", "memory_mib": 5_000, "latency_class": "batch"} for index in range(8)]
    nodes = [
        {"name": "h100", "gpu": "H100-80GB", "gpus": 2, "allow_mig": False},
        {"name": "l4-a", "gpu": "L4", "gpus": 1},
        {"name": "l4-b", "gpu": "L4", "gpus": 1},
    ]
    problem = build_problem(Fleet.model_validate({"models": models}), Inventory.model_validate({"nodes": nodes}))
    start: Solution = [[(0, problem.options[0][0][SHARED])], [(0, problem.options[1][0][SHARED])]]
    start += [[(2 if m < 6 else 3, problem.options[m][2][SHARED])] for m in range(2, 9)]
    _check(problem, start)

    improved = improve(problem, start)

    _check(problem, improved)
    assert (used_gpus(start), used_gpus(improved), lower_bound(problem)) == (3, 2, 2)
    assert sorted({g for placed in improved for g, _unit in placed}) == [0, 1]  # both GPUs of the H100 node


def test_sideways_steps_reach_the_optimum_where_steps_that_must_improve_stall() -> None:
    # Fleet 138 of the fleet benchmark: 50 models on 17 nodes of six products, optimum 20 GPUs (the lower bound).
    # A search that keeps only improving steps stalls at 21 after 240 steps; one that also keeps sideways steps
    # drifts to an arrangement some neighbourhood can free a GPU of.
    data = Path(__file__).parent / "data"
    fleet = Fleet.model_validate(yaml.safe_load((data / "benchmark-fleet-138.yaml").read_text(encoding="utf-8")))
    nodes = Inventory.model_validate(yaml.safe_load((data / "benchmark-inventory-138.yaml").read_bytes()))
    problem = build_problem(fleet, nodes)
    start, _failures = plan_heuristic(problem)
    assert start is not None
    start = refine(problem, start)

    improved = improve(problem, start)

    _check(problem, improved)
    assert (used_gpus(start), used_gpus(improved), lower_bound(problem)) == (22, 20, 20)
