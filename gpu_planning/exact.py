"""The exact planner: the placement problem as a CP-SAT model (OR-Tools), minimising the GPUs used.

Variables count replicas per (model, GPU, unit, MIG start), so replicas of a model are interchangeable and the
solver does not search their permutations. Constraints: every replica placed; one resource name per model; a MIG
GPU's instances take disjoint memory slices at allowed starts and at most 7 compute slices (a whole GPU takes all
8 slices); a time-sliced node shares every GPU, with at most ``max_time_slices`` shares and their memory within
the GPU's; quotas per namespace and resource.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from gpu_planning.catalog import COMPUTE_SLICES, MEMORY_SLICES
from gpu_planning.heuristic import Solution
from gpu_planning.problem import Problem


@dataclass(frozen=True)
class ExactResult:
    """The solver's answer: a solution (None when none was found), whether it is proven optimal, the bound."""

    solution: Solution | None
    optimal: bool
    infeasible: bool
    gpus_used: int | None
    lower_bound: int


def solve_exact(
    problem: Problem, *, time_limit_s: float, hint: Solution | None = None, workers: int = 1
) -> ExactResult:
    """Solve the placement problem with CP-SAT within ``time_limit_s`` seconds."""
    from ortools.sat.python import cp_model

    model = cp_model.CpModel()
    models = problem.fleet.models
    used = [model.new_bool_var(f"used{g}") for g in range(len(problem.gpus))]
    time_sliced_node = {node.name: model.new_bool_var(f"ts_{node.name}") for node in problem.inventory.nodes}
    # (m, g, resource, start) → count variable; start is the MIG placement, -1 for whole GPUs and shares.
    counts: dict[tuple[int, int, str, int], Any] = {}
    chosen: dict[tuple[int, str], Any] = {}
    slots: dict[tuple[int, int], list[Any]] = defaultdict(list)
    fixed: dict[tuple[int, str], list[Any]] = defaultdict(list)
    compute: dict[int, list[Any]] = defaultdict(list)
    shares: dict[int, list[tuple[Any, int]]] = defaultdict(list)
    quota_use: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for m, options in enumerate(problem.options):
        replicas = models[m].replicas
        for g, units in options.items():
            gpu = problem.gpus[g]
            for resource, unit in units.items():
                if (m, resource) not in chosen:
                    chosen[m, resource] = model.new_bool_var(f"m{m}_{resource}")
                if unit.kind == "time-sliced":
                    var = model.new_int_var(0, min(replicas, gpu.product.max_time_slices), f"n{m}_{g}_ts")
                    counts[m, g, resource, -1] = var
                    shares[g].append((var, models[m].memory_mib))
                    model.add(var == 0).only_enforce_if(~time_sliced_node[gpu.node.name])
                elif unit.kind == "whole":
                    var = model.new_bool_var(f"n{m}_{g}_whole")
                    counts[m, g, resource, -1] = var
                    for slot in range(MEMORY_SLICES):
                        slots[g, slot].append(var)
                    compute[g].append(var * COMPUTE_SLICES)
                    model.add(var == 0).only_enforce_if(time_sliced_node[gpu.node.name])
                elif gpu.fixed_layout is not None:
                    assert unit.profile is not None  # mig units name their profile
                    limit = Counter(gpu.fixed_layout)[unit.profile.name]
                    var = model.new_int_var(0, min(replicas, limit), f"n{m}_{g}_{unit.profile.name}")
                    counts[m, g, resource, -1] = var
                    fixed[g, unit.profile.name].append(var)
                    model.add(var == 0).only_enforce_if(time_sliced_node[gpu.node.name])
                else:
                    assert unit.profile is not None
                    for start in unit.profile.placements:
                        var = model.new_bool_var(f"n{m}_{g}_{unit.profile.name}@{start}")
                        counts[m, g, resource, start] = var
                        for slot in range(start, start + unit.profile.memory_slices):
                            slots[g, slot].append(var)
                        compute[g].append(var * unit.profile.compute_slices)
                        model.add(var == 0).only_enforce_if(time_sliced_node[gpu.node.name])
    per_model: dict[int, list[Any]] = defaultdict(list)
    per_model_resource: dict[tuple[int, str], list[Any]] = defaultdict(list)
    per_gpu: dict[int, list[Any]] = defaultdict(list)
    for (m, g, resource, _start), var in counts.items():
        per_model[m].append(var)
        per_model_resource[m, resource].append(var)
        per_gpu[g].append(var)
        quota_use[models[m].namespace, resource].append(var)
    for m, model_spec in enumerate(models):
        model.add(sum(per_model[m]) == model_spec.replicas)
        model.add_exactly_one(var for (mm, _r), var in chosen.items() if mm == m)
    for (m, resource), variables in per_model_resource.items():
        model.add(sum(variables) == 0).only_enforce_if(~chosen[m, resource])
    for variables in slots.values():
        model.add(sum(variables) <= 1)
    for (g, profile), variables in fixed.items():
        model.add(sum(variables) <= Counter(problem.gpus[g].fixed_layout or ())[profile])
    for terms in compute.values():
        model.add(sum(terms) <= COMPUTE_SLICES)
    for g, pairs in shares.items():
        product = problem.gpus[g].product
        model.add(sum(var for var, _ in pairs) <= product.max_time_slices)
        model.add(sum(var * need for var, need in pairs) <= product.memory_mib)
    for g, variables in per_gpu.items():
        most = max(problem.gpus[g].product.max_time_slices, MEMORY_SLICES)
        model.add(sum(variables) <= most * used[g])
    for (namespace, resource), variables in quota_use.items():
        quota = problem.quota(namespace, resource)
        if quota is not None:
            model.add(sum(variables) <= quota)
    # A node's GPUs are alike: use them in index order, so the solver does not try their permutations.
    for earlier, later in zip(range(len(problem.gpus)), range(1, len(problem.gpus)), strict=False):
        if problem.gpus[earlier].node is problem.gpus[later].node:
            model.add(used[earlier] >= used[later])
    model.minimize(sum(used))
    if hint is not None:
        _add_hint(model, problem, counts, chosen, hint)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = workers
    status = solver.solve(model)
    bound = math.ceil(solver.best_objective_bound - 1e-6) if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) else 0
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return ExactResult(None, False, status == cp_model.INFEASIBLE, None, bound)
    solution: Solution = [[] for _ in models]
    for (m, g, resource, _start), var in counts.items():
        unit = problem.options[m][g][resource]
        solution[m] += [(g, unit)] * solver.value(var)
    return ExactResult(solution, status == cp_model.OPTIMAL, False, int(solver.objective_value), bound)


def _add_hint(
    model: Any,
    problem: Problem,
    counts: dict[tuple[int, int, str, int], Any],
    chosen: dict[tuple[int, str], Any],
    hint: Solution,
) -> None:
    """Start the search from the heuristic's solution (its MIG starts are recomputed, so only counts are hinted)."""
    wanted: Counter[tuple[int, int, str]] = Counter(
        (m, g, unit.resource) for m, placed in enumerate(hint) for g, unit in placed
    )
    for (m, g, resource, start), var in counts.items():
        if start < 0:
            model.add_hint(var, wanted[m, g, resource])
    resources = {(m, unit.resource) for m, placed in enumerate(hint) for _g, unit in placed}
    for key, var in chosen.items():
        model.add_hint(var, key in resources)
