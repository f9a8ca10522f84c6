"""The exact planner: the placement problem as a CP-SAT model (OR-Tools), minimising the GPUs used.

Variables count replicas per (model, GPU, unit, MIG start), so replicas of a model are interchangeable and the
solver does not search their permutations. Constraints: every replica placed; one resource name per model; a MIG
GPU's instances take disjoint memory slices at allowed starts and at most 7 compute slices (a whole GPU takes all
8 slices); a time-sliced node shares every GPU, with at most ``max_time_slices`` shares and their memory within
the GPU's; quotas per namespace and resource. Interchangeable GPUs are ordered by use (symmetry breaking), the
objective is bounded below by :func:`gpu_planning.problem.lower_bound`, and a hint is taken as a complete start.
"""

from __future__ import annotations

import functools
import itertools
import math
import multiprocessing
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from gpu_planning.catalog import COMPUTE_SLICES, MEMORY_SLICES, mig_placement
from gpu_planning.heuristic import Solution
from gpu_planning.problem import Problem, lower_bound, mig_resource


@dataclass(frozen=True)
class ExactResult:
    """The solver's answer: a solution (None when none was found), whether it is proven optimal, the bound."""

    solution: Solution | None
    optimal: bool
    infeasible: bool
    gpus_used: int | None
    lower_bound: int


@dataclass(frozen=True)
class Scope:
    """A part of the problem to solve again while the rest of a plan stays where it is (see gpu_planning.lns).

    ``replicas`` says how many replicas of each model in scope are placed again, all on ``gpus``; ``resources``
    pins the resource of a model whose other replicas stay outside; ``node_modes`` fixes whether a node is
    time-sliced where GPUs outside the scope decide it; ``quota_used`` is what the rest of the plan takes. Among
    placements on the fewest GPUs, the solver prefers the fewest replicas on ``emptied``.
    """

    gpus: frozenset[int]
    replicas: dict[int, int]
    resources: dict[int, str]
    node_modes: dict[str, bool]
    quota_used: dict[tuple[str, str], int]
    emptied: int


def solve_exact(
    problem: Problem,
    *,
    time_limit_s: float,
    hint: Solution | None = None,
    workers: int = 1,
    scope: Scope | None = None,
    deterministic: bool = False,
) -> ExactResult:
    """Solve the placement problem with CP-SAT within ``time_limit_s`` seconds, in a process of its own.

    With ``deterministic`` the limit is CP-SAT's deterministic time (work counted, not seconds), so one worker
    gives the same answer on every run and machine.

    OR-Tools carries its own abseil and protobuf: in a process that has loaded torch or TensorFlow first,
    CP-SAT crashes with a segmentation fault (seen in the test suite), so it runs in a spawned interpreter
    that imports nothing else. The process is started once and reused.
    """
    solving = _solver_process().submit(
        _solve, problem, time_limit_s=time_limit_s, hint=hint, workers=workers, scope=scope, deterministic=deterministic
    )
    return solving.result()


@functools.cache
def _solver_process() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))


def _solve(
    problem: Problem,
    *,
    time_limit_s: float,
    hint: Solution | None,
    workers: int,
    scope: Scope | None = None,
    deterministic: bool = False,
) -> ExactResult:
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
    wanted_replicas = {m: model.replicas for m, model in enumerate(models)} if scope is None else scope.replicas
    for m, options in enumerate(problem.options):
        if m not in wanted_replicas:
            continue
        replicas = wanted_replicas[m]
        for g, units in options.items():
            if scope is not None and g not in scope.gpus:
                continue
            gpu = problem.gpus[g]
            for resource, unit in units.items():
                if scope is not None and scope.resources.get(m, resource) != resource:
                    continue
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
    for (m, _g, resource, _start), var in counts.items():
        per_model[m].append(var)
        per_model_resource[m, resource].append(var)
        quota_use[models[m].namespace, resource].append(var)
    for m, replicas in wanted_replicas.items():
        model.add(sum(per_model[m]) == replicas)
        model.add_exactly_one(var for (mm, _r), var in chosen.items() if mm == m)
    for (m, resource), variables in per_model_resource.items():
        model.add(sum(variables) == 0).only_enforce_if(~chosen[m, resource])
    # Capacities are scaled by used[g]: an unused GPU holds nothing, which ties every capacity to the objective
    # (a relaxation then needs a GPU's worth of slices or memory per used GPU, not one big-M count).
    for (g, _slot), variables in slots.items():
        model.add(sum(variables) <= used[g])
    for (g, profile), variables in fixed.items():
        model.add(sum(variables) <= Counter(problem.gpus[g].fixed_layout or ())[profile] * used[g])
    for g, terms in compute.items():
        model.add(sum(terms) <= COMPUTE_SLICES * used[g])
    for g, pairs in shares.items():
        product = problem.gpus[g].product
        model.add(sum(var for var, _ in pairs) <= product.max_time_slices * used[g])
        model.add(sum(var * need for var, need in pairs) <= product.memory_mib * used[g])
    for (namespace, resource), variables in quota_use.items():
        quota = problem.quota(namespace, resource)
        if quota is not None:
            taken = 0 if scope is None else scope.quota_used.get((namespace, resource), 0)
            model.add(sum(variables) <= quota - taken)
    if scope is None:
        _break_symmetry(model, problem, used)
        # CP-SAT's own bound on this model stays weak; the per-replica one lets it prove plans that reach it.
        model.add(sum(used) >= lower_bound(problem))
        model.minimize(sum(used))
    else:
        for name, shared in scope.node_modes.items():
            model.add(time_sliced_node[name] == int(shared))
        on_emptied = [var for (_m, g, _r, _s), var in counts.items() if g == scope.emptied]
        model.minimize(sum(used[g] for g in scope.gpus) * (sum(scope.replicas.values()) + 1) + sum(on_emptied))
    if hint is not None:
        _add_hint(model, problem, (counts, chosen, used, time_sliced_node), hint, canonical=scope is None)
    solver = cp_model.CpSolver()
    if deterministic:
        solver.parameters.max_deterministic_time = time_limit_s
    else:
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
    return ExactResult(solution, status == cp_model.OPTIMAL, False, round(solver.objective_value), bound)


def _node_kinds(problem: Problem) -> list[list[int]]:
    """Groups of interchangeable nodes: alike in product, GPU count, labels, taints, layout and sharing flags."""
    kinds: dict[str, list[int]] = defaultdict(list)
    for n, node in enumerate(problem.inventory.nodes):
        kinds[node.model_dump_json(exclude={"name"})].append(n)
    return list(kinds.values())


def _break_symmetry(model: Any, problem: Problem, used: list[Any]) -> None:
    """Order interchangeable GPUs by use, so the solver does not search their permutations.

    A node's GPUs are used in index order; of interchangeable nodes, an earlier one uses at least as many GPUs.
    """
    for gpus in problem.node_gpus:
        for earlier, later in itertools.pairwise(gpus):
            model.add(used[earlier] >= used[later])
    for nodes in _node_kinds(problem):
        for earlier, later in itertools.pairwise(nodes):
            earlier_used = sum(used[g] for g in problem.node_gpus[earlier])
            model.add(earlier_used >= sum(used[g] for g in problem.node_gpus[later]))


def _canonical(problem: Problem, solution: Solution) -> Solution:
    """The same plan with GPUs renumbered to obey :func:`_break_symmetry` (used GPUs first, busier nodes first)."""
    busy = Counter(g for placed in solution for g, _unit in placed)
    renumber: dict[int, int] = {}
    for nodes in _node_kinds(problem):
        ranked = sorted(nodes, key=lambda n: -sum(g in busy for g in problem.node_gpus[n]))
        for source, target in zip(ranked, nodes, strict=True):
            gpus = sorted(problem.node_gpus[source], key=lambda g: g not in busy)
            renumber.update(zip(gpus, problem.node_gpus[target], strict=True))
    return [[(renumber[g], unit) for g, unit in placed] for placed in solution]


def _add_hint(
    model: Any,
    problem: Problem,
    variables: tuple[dict[tuple[int, int, str, int], Any], dict[tuple[int, str], Any], list[Any], dict[str, Any]],
    hint: Solution,
    *,
    canonical: bool = True,
) -> None:
    """Start the search from a complete solution: every count, MIG start, resource, used flag and node mode.

    Hinting every variable (zeros included) lets CP-SAT take the hint as its first solution without a search.
    MIG starts are recomputed per GPU with :func:`mig_placement`, as the plan's layout is.
    """
    counts, chosen, used, time_sliced_node = variables
    if canonical:  # the symmetry breaking holds only for the whole problem
        hint = _canonical(problem, hint)
    wanted: Counter[tuple[int, int, str, int]] = Counter()
    mig: dict[int, list[tuple[int, str]]] = defaultdict(list)
    shared_nodes: set[str] = set()
    for m, placed in enumerate(hint):
        for g, unit in placed:
            if unit.kind == "time-sliced":
                shared_nodes.add(problem.gpus[g].node.name)
            if unit.profile is not None and problem.gpus[g].fixed_layout is None:
                mig[g].append((m, unit.profile.name))
            else:
                wanted[m, g, unit.resource, -1] += 1
    for g, residents in mig.items():
        placement = mig_placement(problem.gpus[g].product, [profile for _m, profile in residents])
        assert placement is not None  # the heuristic only builds layouts the GPU allows
        starts: dict[str, list[int]] = defaultdict(list)
        for profile, start in placement:
            starts[profile].append(start)
        for m, profile in residents:
            wanted[m, g, mig_resource(profile), starts[profile].pop()] += 1
    for key, var in counts.items():
        model.add_hint(var, wanted[key])
    resources = {(m, unit.resource) for m, placed in enumerate(hint) for _g, unit in placed}
    for choice, var in chosen.items():
        model.add_hint(var, choice in resources)
    busy = {g for placed in hint for g, _unit in placed}
    for g, var in enumerate(used):
        model.add_hint(var, g in busy)
    for name, var in time_sliced_node.items():
        model.add_hint(var, name in shared_nodes)
