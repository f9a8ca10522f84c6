"""A fast first-fit-decreasing planner: big models first, each replica into the fullest GPU it fits, else a new one.

A model's replicas all take one unit kind (see :mod:`gpu_planning.problem`); the planner tries the unit that takes
the smallest part of a GPU first and falls back to larger ones, taking back a partial placement before each retry.
Only GPUs that still have room are scanned, and a node's unused GPUs are alike, so a new GPU is looked for per node.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from gpu_planning.catalog import COMPUTE_SLICES, MEMORY_SLICES, mig_placement
from gpu_planning.problem import Problem, Unit

Solution = list[list[tuple[int, Unit]]]
"""Per model, one (GPU index, unit) per replica."""


@dataclass
class _GpuState:
    mode: str | None = None
    profiles: list[str] = field(default_factory=list)
    shares: int = 0
    shared_mib: int = 0


def unit_fraction(problem: Problem, gpu: int, unit: Unit, need_mib: int) -> float:
    """The part of GPU ``gpu`` one replica in ``unit`` takes (1 for a whole GPU)."""
    product = problem.gpus[gpu].product
    if unit.profile is not None:
        return max(unit.profile.memory_slices / MEMORY_SLICES, unit.profile.compute_slices / COMPUTE_SLICES)
    if unit.kind == "time-sliced":
        return max(need_mib / product.memory_mib, 1 / product.max_time_slices)
    return 1.0


class _State:
    """GPU and node modes and quota use, with ``unplace`` so a model's partial placement can be taken back."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.gpus = [_GpuState() for _ in problem.gpus]
        self.node_of = [n for n, gpus in enumerate(problem.node_gpus) for _ in gpus]
        self.node_mode: dict[int, str] = {}
        self.quota_used: Counter[tuple[str, str]] = Counter()
        # Shared GPUs (MIG or time-sliced) that may still have room; a whole GPU is full when placed.
        self.open: dict[int, None] = {}

    def quota_left(self, namespace: str, resource: str) -> bool:
        limit = self.problem.quota(namespace, resource)
        return limit is None or self.quota_used[namespace, resource] < limit

    def fits(self, gpu: int, unit: Unit, need: int) -> bool:
        info, state = self.problem.gpus[gpu], self.gpus[gpu]
        node_mode = self.node_mode.get(self.node_of[gpu])
        if unit.kind == "time-sliced":
            return (
                node_mode in (None, "time-sliced")
                and state.mode in (None, "time-sliced")
                and state.shares < info.product.max_time_slices
                and state.shared_mib + need <= info.product.memory_mib
            )
        if node_mode == "time-sliced":
            return False
        if unit.profile is None:
            return state.mode is None
        if state.mode not in (None, "mig"):
            return False
        layout = info.fixed_layout
        if layout is not None:
            return state.profiles.count(unit.profile.name) < layout.count(unit.profile.name)
        return mig_placement(info.product, [*state.profiles, unit.profile.name]) is not None

    def place(self, gpu: int, unit: Unit, need: int, namespace: str) -> None:
        state = self.gpus[gpu]
        state.mode = unit.kind
        self.node_mode[self.node_of[gpu]] = "time-sliced" if unit.kind == "time-sliced" else "exclusive"
        self.quota_used[namespace, unit.resource] += 1
        if unit.profile is not None:
            state.profiles.append(unit.profile.name)
        if unit.kind == "time-sliced":
            state.shares += 1
            state.shared_mib += need
        if unit.kind != "whole" and self.fullness(gpu) < 1:
            self.open[gpu] = None
        else:
            self.open.pop(gpu, None)

    def unplace(self, gpu: int, unit: Unit, need: int, namespace: str) -> None:
        state, node = self.gpus[gpu], self.node_of[gpu]
        self.quota_used[namespace, unit.resource] -= 1
        if unit.profile is not None:
            state.profiles.remove(unit.profile.name)
        if unit.kind == "time-sliced":
            state.shares -= 1
            state.shared_mib -= need
        if not state.profiles and not state.shares:
            state.mode = None
            self.open.pop(gpu, None)
        else:
            self.open[gpu] = None
        if all(self.gpus[g].mode is None for g in self.problem.node_gpus[node]):
            self.node_mode.pop(node, None)

    def fullness(self, gpu: int) -> float:
        state, product = self.gpus[gpu], self.problem.gpus[gpu].product
        if state.mode == "time-sliced":
            return max(state.shared_mib / product.memory_mib, state.shares / product.max_time_slices)
        profiles = [product.profile(name) for name in state.profiles]
        return max(
            sum(p.compute_slices for p in profiles) / COMPUTE_SLICES,
            sum(p.memory_slices for p in profiles) / MEMORY_SLICES,
        )


def plan_heuristic(problem: Problem) -> tuple[Solution | None, dict[str, str]]:
    """Place every replica, or say for each model that could not be placed why not.

    Returns:
        The solution (None when a model did not fit) and, per unplaced model, the reason.
    """
    models = problem.fleet.models
    order = sorted(range(len(models)), key=lambda m: (-models[m].memory_mib, -models[m].replicas, m))
    state = _State(problem)
    solution: Solution = [[] for _ in models]
    failures: dict[str, str] = {}
    for m in order:
        model, per_node = models[m], problem.node_options[m]
        fraction: dict[str, float] = {}
        # Nodes of one kind share one units dict: rank each distinct one once.
        distinct = {id(units): (n, units) for n, units in per_node.items()}
        for n, units in distinct.values():
            for resource, unit in units.items():
                part = unit_fraction(problem, problem.node_gpus[n][0], unit, model.memory_mib)
                fraction[resource] = min(fraction.get(resource, 1.0), part)
        ranked = sorted(fraction, key=lambda resource: fraction[resource])
        for resource in ranked:
            placed = _place_replicas(problem, state, m, resource)
            if len(placed) == model.replicas:
                solution[m] = placed
                break
            for gpu, unit in reversed(placed):
                state.unplace(gpu, unit, model.memory_mib, model.namespace)
        else:
            failures[model.name] = _why_not(problem, state, m, ranked)
    return (None if failures else solution), failures


def _place_replicas(problem: Problem, state: _State, m: int, resource: str) -> list[tuple[int, Unit]]:
    """Place the model's replicas in ``resource`` units one by one; fewer come back when the GPUs run out."""
    model, per_node = problem.fleet.models[m], problem.node_options[m]
    need, namespace = model.memory_mib, model.namespace
    placed: list[tuple[int, Unit]] = []
    for _ in range(model.replicas):
        if not state.quota_left(namespace, resource):
            return placed
        best: tuple[float, int, Unit] | None = None
        for g in state.open:
            unit = per_node.get(state.node_of[g], {}).get(resource)
            if unit is not None and state.fits(g, unit, need):
                candidate = (-state.fullness(g), g, unit)
                best = candidate if best is None or candidate < best else best
        if best is None:
            best = _fresh_gpu(problem, state, m, resource)
            if best is None:
                return placed
        _score, gpu, unit = best
        state.place(gpu, unit, need, namespace)
        placed.append((gpu, unit))
    return placed


def _fresh_gpu(problem: Problem, state: _State, m: int, resource: str) -> tuple[float, int, Unit] | None:
    """The unused GPU where the unit takes the largest part (the tightest fit); smaller GPUs first on ties."""
    model, best = problem.fleet.models[m], None
    best_key: tuple[float, int, int] | None = None
    for n, units in problem.node_options[m].items():
        unit = units.get(resource)
        free = next((g for g in problem.node_gpus[n] if state.gpus[g].mode is None), None)
        if unit is None or free is None or not state.fits(free, unit, model.memory_mib):
            continue
        key = (unit_fraction(problem, free, unit, model.memory_mib), problem.gpus[free].product.memory_mib, free)
        if best_key is None or (-key[0], key[1], key[2]) < (-best_key[0], best_key[1], best_key[2]):
            best_key, best = key, (0.0, free, unit)
    return best


def _why_not(problem: Problem, state: _State, m: int, resources: list[str]) -> str:
    model = problem.fleet.models[m]
    reasons = []
    for resource in resources:
        limit = problem.quota(model.namespace, resource)
        if limit is not None and model.replicas > limit - state.quota_used[model.namespace, resource]:
            left = limit - state.quota_used[model.namespace, resource]
            reasons.append(f"{resource}: namespace {model.namespace} quota has {left} of {limit} left")
        else:
            reasons.append(f"{resource}: no free unit left on the nodes it may use")
    return f"{model.replicas} replica(s) of {model.memory_mib} MiB; " + "; ".join(reasons)
