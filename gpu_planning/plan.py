"""``plan_fleet``: place a fleet on an inventory with the fewest GPUs, and the plan's typed result."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Literal

from pydantic import BaseModel, ConfigDict

from gpu_planning.catalog import mig_placement, validate_mig_layout
from gpu_planning.exact import solve_exact
from gpu_planning.fleet import Fleet, Inventory
from gpu_planning.heuristic import Solution, plan_heuristic, used_gpus
from gpu_planning.lns import improve
from gpu_planning.problem import Problem, UnitKind, build_problem, lower_bound
from gpu_planning.refine import refine
from serving_core.errors import InvalidInputError

REFINE_MAX_REPLICAS = 800
"""Above this many replicas the plan is not refined (:mod:`gpu_planning.refine`, :mod:`gpu_planning.lns`), so
that 1,000 models stay within the 2 s target (benchmarks/fleet_planning.py measures both)."""

EXACT_MAX_VARIABLES = 4000
"""Above this many placement variables the shipped planner keeps the heuristic's answer: building and solving
the CP-SAT model would cost more than the time limit (benchmarks/fleet_planning.py measures the result)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Assignment(_Frozen):
    """One replica on one GPU."""

    model: str
    namespace: str
    replica: int
    node: str
    gpu: int
    unit: UnitKind
    resource: str
    mig_profile: str | None = None


class MigInstance(_Frozen):
    """One MIG instance of a GPU's layout; ``model`` None when the layout keeps it free."""

    profile: str
    start: int
    memory_slices: int
    model: str | None = None


class GpuLayout(_Frozen):
    """What one GPU is configured as and what runs on it."""

    node: str
    gpu: int
    product: str
    mode: Literal["idle", "whole", "mig", "time-sliced"]
    mig: list[MigInstance] = []
    models: list[str] = []
    memory_mib: int
    used_mib: int = 0


class FleetPlan(_Frozen):
    """The plan: each replica's place, each GPU's layout, how many GPUs it uses and how sure we are of that."""

    solver: str
    gpus_used: int
    gpus_total: int
    lower_bound: int
    assignments: list[Assignment]
    gpus: list[GpuLayout]


def plan_fleet(fleet: Fleet, inventory: Inventory, *, time_limit_s: float = 1.0) -> FleetPlan:
    """Place every replica of ``fleet`` on ``inventory`` using as few GPUs as possible.

    The heuristic places the fleet first, then frees GPUs by ruin and recreate (up to 800 replicas). A plan that
    meets the lower bound is optimal as it is; otherwise, on instances small enough, CP-SAT improves it for up
    to ``time_limit_s`` seconds (and proves it optimal when it can), and on larger ones (up to 800 replicas)
    CP-SAT solves a few GPUs at a time again (:mod:`gpu_planning.lns`, a fixed number of deterministic steps).
    A fleet the heuristic cannot place is handed to CP-SAT too before it is refused.

    Raises:
        InvalidInputError: a model fits no GPU or node, or the fleet does not fit the cluster (the message lists
            each model that could not be placed and why).
    """
    problem = build_problem(fleet, inventory)
    solution, failures = plan_heuristic(problem)
    solver, bound = "heuristic (first-fit decreasing)", lower_bound(problem)
    replicas = sum(model.replicas for model in fleet.models)
    if solution is not None and replicas <= REFINE_MAX_REPLICAS:
        solution, solver = refine(problem, solution), "heuristic (first-fit decreasing, ruin and recreate)"
    small = _small_enough(problem)
    if solution is not None and not small and used_gpus(solution) > bound and replicas <= REFINE_MAX_REPLICAS:
        improved = improve(problem, solution)
        if used_gpus(improved) < used_gpus(solution):
            solution, solver = improved, solver.replace(")", ", CP-SAT neighbourhoods)")
    if solution is not None and used_gpus(solution) == bound:
        solver += ", proven optimal"  # it meets the lower bound: nothing can do better
    elif small:
        exact = solve_exact(problem, time_limit_s=time_limit_s, hint=solution)
        if exact.solution is not None and (solution is None or used_gpus(exact.solution) < used_gpus(solution)):
            solution, solver = exact.solution, "cp-sat"
        bound = max(bound, exact.lower_bound)
        if exact.optimal:
            solver += ", proven optimal"
        if exact.infeasible:
            failures = {**failures, "(proof)": "CP-SAT proved that no placement exists"}
    if solution is None:
        lines = "\n".join(f"  - {name}: {why}" for name, why in failures.items())
        raise InvalidInputError(
            f"the fleet does not fit the cluster ({len(problem.gpus)} GPUs); not placed:\n{lines}",
            hint="add GPUs or nodes, raise the namespace quota, allow sharing, or lower replicas",
        )
    return _plan(problem, solution, solver, bound)


def _small_enough(problem: Problem) -> bool:
    """Whether the CP-SAT model stays under EXACT_MAX_VARIABLES (counting stops once it is over)."""
    variables = 0
    for per_node in problem.node_options:
        for n, units in per_node.items():
            slots = sum(len(unit.profile.placements) if unit.profile is not None else 1 for unit in units.values())
            variables += len(problem.node_gpus[n]) * slots
            if variables > EXACT_MAX_VARIABLES:
                return False
    return True


def _plan(problem: Problem, solution: Solution, solver: str, bound: int) -> FleetPlan:
    assignments: list[Assignment] = []
    on_gpu: dict[int, list[tuple[str, int, str | None, str]]] = defaultdict(list)
    for m, placed in enumerate(solution):
        model = problem.fleet.models[m]
        for replica, (g, unit) in enumerate(sorted(placed, key=lambda item: item[0])):
            gpu = problem.gpus[g]
            profile = unit.profile.name if unit.profile is not None else None
            assignments.append(
                Assignment(
                    model=model.name,
                    namespace=model.namespace,
                    replica=replica,
                    node=gpu.node.name,
                    gpu=gpu.index,
                    unit=unit.kind,
                    resource=unit.resource,
                    mig_profile=profile,
                )
            )
            on_gpu[g].append((model.name, model.memory_mib, profile, unit.kind))
    layouts = [_layout(problem, g, on_gpu.get(g, [])) for g in range(len(problem.gpus))]
    return FleetPlan(
        solver=solver,
        gpus_used=used_gpus(solution),
        gpus_total=len(problem.gpus),
        lower_bound=bound,
        assignments=assignments,
        gpus=layouts,
    )


def _layout(problem: Problem, g: int, placed: list[tuple[str, int, str | None, str]]) -> GpuLayout:
    gpu = problem.gpus[g]
    base = GpuLayout(
        node=gpu.node.name, gpu=gpu.index, product=gpu.product.name, memory_mib=gpu.product.memory_mib, mode="idle"
    )
    layout = gpu.fixed_layout
    if not placed and layout is None:
        return base
    models = [name for name, _need, _profile, _kind in placed]
    used = sum(need for _name, need, _profile, _kind in placed)
    kinds = {kind for *_rest, kind in placed}
    if layout is not None or kinds == {"mig"}:
        profiles = list(layout) if layout is not None else [profile or "" for *_rest, profile, _kind in placed]
        placement = (
            validate_mig_layout(gpu.product, profiles) if layout is not None else mig_placement(gpu.product, profiles)
        )
        assert placement is not None  # both planners only produce layouts the GPU allows
        waiting: dict[str, list[str]] = defaultdict(list)
        for name, _need, profile, _kind in placed:
            waiting[profile or ""].append(name)
        instances = [
            MigInstance(
                profile=profile,
                start=start,
                memory_slices=gpu.product.profile(profile).memory_slices,
                model=waiting[profile].pop(0) if waiting[profile] else None,
            )
            for profile, start in placement
        ]
        return base.model_copy(update={"mode": "mig", "mig": instances, "models": models, "used_mib": used})
    mode: Literal["whole", "time-sliced"] = "time-sliced" if kinds == {"time-sliced"} else "whole"
    return base.model_copy(update={"mode": mode, "models": models, "used_mib": used})


def shares_per_node(plan: FleetPlan) -> dict[str, int]:
    """The time-slicing replicas each time-sliced node needs: the most shares any of its GPUs holds."""
    shares: Counter[str] = Counter()
    for layout in plan.gpus:
        if layout.mode == "time-sliced":
            shares[layout.node] = max(shares[layout.node], len(layout.models), 2)
    return dict(shares)
