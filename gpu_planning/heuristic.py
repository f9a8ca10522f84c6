"""The fast planner: first-fit decreasing with several strategies, then local improvement by emptying GPUs.

A model's replicas all take one unit kind (see :mod:`gpu_planning.problem`). Each strategy places models biggest
first, each replica into the fullest GPU in use where it fits (best fit), else into a fresh GPU, trying the
model's units in order and taking back a partial placement before each retry. Strategies differ in what "biggest"
means (memory, or the part of a GPU the model takes), in which fresh GPU they open (the tightest fit, which keeps
large GPUs free, or the roomiest, which leaves room for the models that follow) and in whether MIG units go before
a time-sliced share; small fleets also get seeded restarts from perturbed orders. Each plan is then improved: GPUs
are taken least full first and the models on them moved into other GPUs in use; a GPU whose models all move is
freed. The plan using the fewest GPUs wins.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from gpu_planning.catalog import COMPUTE_SLICES, MEMORY_SLICES, mig_placement
from gpu_planning.problem import Problem, Unit, mig_resource, unit_fraction

MIG_PREFIX = mig_resource("")

Solution = list[list[tuple[int, Unit]]]
"""Per model, one (GPU index, unit) per replica."""


@dataclass
class _GpuState:
    mode: str | None = None
    profiles: list[str] = field(default_factory=list)
    shares: int = 0
    shared_mib: int = 0
    # Compute and memory slices of the MIG instances, kept so fullness and the quick checks need no sums.
    compute: int = 0
    slices: int = 0


class State:
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
        """Whether ``namespace`` may take one more ``resource``."""
        limit = self.problem.quota(namespace, resource)
        return limit is None or self.quota_used[namespace, resource] < limit

    def fits(self, gpu: int, unit: Unit, need: int) -> bool:
        """Whether one more replica of ``need`` MiB in ``unit`` fits ``gpu`` (its mode, its node's, its room)."""
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
        if state.compute + unit.profile.compute_slices > COMPUTE_SLICES:
            return False
        if state.slices + unit.profile.memory_slices > MEMORY_SLICES:
            return False
        return mig_placement(info.product, [*state.profiles, unit.profile.name]) is not None

    def place(self, gpu: int, unit: Unit, need: int, namespace: str) -> None:
        """Put one replica on ``gpu`` (unchecked: call :meth:`fits` first)."""
        state = self.gpus[gpu]
        state.mode = unit.kind
        self.node_mode[self.node_of[gpu]] = "time-sliced" if unit.kind == "time-sliced" else "exclusive"
        self.quota_used[namespace, unit.resource] += 1
        if unit.profile is not None:
            state.profiles.append(unit.profile.name)
            state.compute += unit.profile.compute_slices
            state.slices += unit.profile.memory_slices
        if unit.kind == "time-sliced":
            state.shares += 1
            state.shared_mib += need
        if unit.kind != "whole" and self.fullness(gpu) < 1:
            self.open[gpu] = None
        else:
            self.open.pop(gpu, None)

    def unplace(self, gpu: int, unit: Unit, need: int, namespace: str) -> None:
        """Take one replica placed with :meth:`place` off ``gpu``."""
        state, node = self.gpus[gpu], self.node_of[gpu]
        self.quota_used[namespace, unit.resource] -= 1
        if unit.profile is not None:
            state.profiles.remove(unit.profile.name)
            state.compute -= unit.profile.compute_slices
            state.slices -= unit.profile.memory_slices
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
        """The larger of the parts of ``gpu`` its shared units take (0 for a whole or unused GPU)."""
        state, product = self.gpus[gpu], self.problem.gpus[gpu].product
        if state.mode == "time-sliced":
            return max(state.shared_mib / product.memory_mib, state.shares / product.max_time_slices)
        return max(state.compute / COMPUTE_SLICES, state.slices / MEMORY_SLICES)


RESTART_BUDGET = 12_000
"""Replica placements the seeded restarts may spend in all (a restart places every replica once, at most 30)."""

STRATEGY_MAX_REPLICAS = 800
"""Above this many replicas only the first strategy runs, so that 1,000 models stay within the 2 s target
(benchmarks/fleet_planning.py measures both)."""


@dataclass(frozen=True)
class Strategy:
    """How one first-fit-decreasing pass orders models and opens fresh GPUs.

    ``units`` "mig-first" tries a model's MIG units before its time-sliced share even when the share takes a
    little less: a share turns its whole node time-sliced, which realtime models cannot use. ``seed`` non-zero
    scales each model's size by a random factor in [0.7, 1.3] (a restart from another order).
    """

    order: Literal["memory", "part"]
    fresh: Literal["tight", "roomy"]
    units: Literal["smallest", "mig-first"] = "smallest"
    seed: int = 0


_UNITS: tuple[Literal["smallest", "mig-first"], ...] = ("smallest", "mig-first")

STRATEGIES = (
    Strategy("part", "roomy"),
    Strategy("part", "roomy", "mig-first"),
    Strategy("memory", "roomy"),
    Strategy("memory", "tight"),
)


def strategies_for(replicas: int) -> tuple[Strategy, ...]:
    """The strategies worth their time on a fleet of ``replicas``: the fixed ones, then seeded restarts."""
    if replicas > STRATEGY_MAX_REPLICAS:
        return STRATEGIES[:1]
    restarts = min(30, RESTART_BUDGET // max(replicas, 1))
    return STRATEGIES + tuple(
        Strategy("part" if seed % 2 else "memory", "roomy" if seed % 3 else "tight", _UNITS[seed % 4 // 2], seed)
        for seed in range(1, restarts + 1)
    )


def plan_heuristic(problem: Problem) -> tuple[Solution | None, dict[str, str]]:
    """Place every replica with each strategy, improve each plan by emptying GPUs, keep the one using fewest.

    Returns:
        The solution (None when no strategy placed every model) and, per model the first strategy could not
        place, the reason.
    """
    replicas = sum(model.replicas for model in problem.fleet.models)
    best: Solution | None = None
    first_failures: dict[str, str] | None = None
    ranking = rank(problem)
    for strategy in strategies_for(replicas):
        state, solution, failures = _first_fit_decreasing(problem, ranking, strategy)
        if first_failures is None:
            first_failures = failures
        if failures:
            continue
        _empty_gpus(problem, ranking.order(strategy), ranking.smallest, state, solution)
        if best is None or used_gpus(solution) < used_gpus(best):
            best = solution
    return best, ({} if best is not None else first_failures or {})


def used_gpus(solution: Solution) -> int:
    """How many GPUs a solution uses."""
    return len({g for placed in solution for g, _unit in placed})


@dataclass(frozen=True)
class Ranking:
    """Per model: its resources, the one taking the smallest part of a GPU first, and that smallest part."""

    resources: list[list[str]]
    mig_first: list[list[str]]
    smallest: list[float]

    def order(self, strategy: Strategy) -> list[list[str]]:
        """Per model, its resources in the order ``strategy`` tries them."""
        return self.mig_first if strategy.units == "mig-first" else self.resources


def rank(problem: Problem) -> Ranking:
    """Each model's resources, the one taking the smallest part of a GPU first."""
    ranked: list[list[str]] = []
    smallest: list[float] = []
    for m, model in enumerate(problem.fleet.models):
        fraction: dict[str, float] = {}
        # Nodes of one kind share one units dict: rank each distinct one once.
        distinct = {id(units): (n, units) for n, units in problem.node_options[m].items()}
        for n, units in distinct.values():
            for resource, unit in units.items():
                part = unit_fraction(problem, problem.node_gpus[n][0], unit, model.memory_mib)
                fraction[resource] = min(fraction.get(resource, 1.0), part)
        ranked.append(sorted(fraction, key=lambda resource: fraction[resource]))
        smallest.append(min(fraction.values()))
    # A stable sort keeps the smallest-part order within MIG units and within the others.
    mig_first = [sorted(resources, key=lambda resource: not resource.startswith(MIG_PREFIX)) for resources in ranked]
    return Ranking(ranked, mig_first, smallest)


def _first_fit_decreasing(
    problem: Problem, ranking: Ranking, strategy: Strategy
) -> tuple[State, Solution, dict[str, str]]:
    models, ranked, smallest = problem.fleet.models, ranking.order(strategy), ranking.smallest
    rng = random.Random(strategy.seed)
    jitter = [rng.uniform(0.7, 1.3) if strategy.seed else 1.0 for _ in models]
    if strategy.order == "memory":
        order = sorted(range(len(models)), key=lambda m: (-models[m].memory_mib * jitter[m], -models[m].replicas, m))
    else:
        order = sorted(range(len(models)), key=lambda m: (-smallest[m] * jitter[m], -models[m].memory_mib, m))
    state = State(problem)
    solution: Solution = [[] for _ in models]
    failures: dict[str, str] = {}
    for m in order:
        model = models[m]
        for resource in ranked[m]:
            placed = _place_replicas(problem, state, m, resource, strategy.fresh)
            if len(placed) == model.replicas:
                solution[m] = placed
                break
            for gpu, unit in reversed(placed):
                state.unplace(gpu, unit, model.memory_mib, model.namespace)
        else:
            failures[model.name] = _why_not(problem, state, m, ranked[m])
    return state, solution, failures


def best_open(state: State, m: int, resource: str) -> tuple[int, Unit] | None:
    """The fullest GPU in use where one more replica of model ``m`` in ``resource`` fits (best fit)."""
    model, per_node = state.problem.fleet.models[m], state.problem.node_options[m]
    best: tuple[float, int, Unit] | None = None
    for g in state.open:
        unit = per_node.get(state.node_of[g], {}).get(resource)
        if unit is not None and state.fits(g, unit, model.memory_mib):
            candidate = (-state.fullness(g), g, unit)
            best = candidate if best is None or candidate < best else best
    return None if best is None else (best[1], best[2])


def _place_replicas(problem: Problem, state: State, m: int, resource: str, fresh: str) -> list[tuple[int, Unit]]:
    """Place the model's replicas in ``resource`` units one by one; fewer come back when the GPUs run out."""
    model = problem.fleet.models[m]
    need, namespace = model.memory_mib, model.namespace
    placed: list[tuple[int, Unit]] = []
    for _ in range(model.replicas):
        if not state.quota_left(namespace, resource):
            return placed
        best = best_open(state, m, resource) or fresh_gpu(problem, state, m, resource, fresh)
        if best is None:
            return placed
        gpu, unit = best
        state.place(gpu, unit, need, namespace)
        placed.append((gpu, unit))
    return placed


def fresh_gpu(problem: Problem, state: State, m: int, resource: str, fresh: str) -> tuple[int, Unit] | None:
    """An unused GPU for the unit: the tightest fit or the roomiest; smaller GPUs first on ties, then by index.

    A whole GPU is always the tightest fit: a GPU no one else may share is best the smallest that holds it.
    """
    model = problem.fleet.models[m]
    best: tuple[tuple[float, int, int], int, Unit] | None = None
    # Nodes with the same units dict and product rank alike: only the first with a free GPU competes.
    seen: set[tuple[int, str]] = set()
    for n, units in problem.node_options[m].items():
        unit = units.get(resource)
        if unit is None or (id(units), problem.gpus[problem.node_gpus[n][0]].product.name) in seen:
            continue
        free = next((g for g in problem.node_gpus[n] if state.gpus[g].mode is None), None)
        if free is None or not state.fits(free, unit, model.memory_mib):
            continue
        seen.add((id(units), problem.gpus[free].product.name))
        part = unit_fraction(problem, free, unit, model.memory_mib)
        roomy = fresh == "roomy" and unit.kind != "whole"
        key = (part if roomy else -part, problem.gpus[free].product.memory_mib, free)
        if best is None or key < best[0]:
            best = (key, free, unit)
    return None if best is None else (best[1], best[2])


def _empty_gpus(
    problem: Problem, resources: list[list[str]], smallest: list[float], state: State, solution: Solution
) -> None:
    """Free shared GPUs, least full first, by moving the models on them into the other GPUs in use.

    Every replica of a model on the GPU moves (wherever it is), in any of the model's resources, so the
    one-resource rule holds; quotas are checked as in the first pass. When a model finds no room, all is undone.
    """
    models = problem.fleet.models
    residents: dict[int, set[int]] = defaultdict(set)
    for m, placed in enumerate(solution):
        for g, _unit in placed:
            residents[g].add(m)
    shared = [g for g in residents if state.gpus[g].mode in ("mig", "time-sliced")]
    for g in sorted(shared, key=lambda g: (state.fullness(g), g)):
        if not residents.get(g):
            continue
        movers = sorted(residents[g], key=lambda m: -smallest[m])
        for m in movers:
            for gpu, unit in solution[m]:
                state.unplace(gpu, unit, models[m].memory_mib, models[m].namespace)
        moved: dict[int, list[tuple[int, Unit]]] = {}
        for m in movers:
            relocated = place_replicas(problem, state, m, resources[m])
            if relocated is None:
                break
            moved[m] = relocated
        if len(moved) < len(movers):
            for m, placed in moved.items():
                for gpu, unit in placed:
                    state.unplace(gpu, unit, models[m].memory_mib, models[m].namespace)
            for m in movers:
                for gpu, unit in solution[m]:
                    state.place(gpu, unit, models[m].memory_mib, models[m].namespace)
            continue
        commit_moves(moved, solution, residents)


def commit_moves(moved: dict[int, list[tuple[int, Unit]]], solution: Solution, residents: dict[int, set[int]]) -> None:
    """Record that each model of ``moved`` now runs where it was placed: its solution and the GPUs' residents."""
    for m, placed in moved.items():
        for gpu, _unit in solution[m]:
            residents[gpu].discard(m)
        for gpu, _unit in placed:
            residents[gpu].add(m)
        solution[m] = placed


def place_replicas(
    problem: Problem,
    state: State,
    m: int,
    resources: list[str],
    fallback: Callable[[str], tuple[int, Unit] | None] | None = None,
) -> list[tuple[int, Unit]] | None:
    """Place all of model ``m``'s replicas in the first resource where they all fit.

    They go into GPUs already in use, or where ``fallback(resource)`` says when none has room. None, with
    nothing placed, when no resource takes them all.
    """
    model = problem.fleet.models[m]
    for resource in resources:
        placed: list[tuple[int, Unit]] = []
        while len(placed) < model.replicas and state.quota_left(model.namespace, resource):
            target = best_open(state, m, resource) or (fallback(resource) if fallback else None)
            if target is None:
                break
            state.place(*target, model.memory_mib, model.namespace)
            placed.append(target)
        if len(placed) == model.replicas:
            return placed
        for gpu, unit in placed:
            state.unplace(gpu, unit, model.memory_mib, model.namespace)
    return None


def _why_not(problem: Problem, state: State, m: int, resources: list[str]) -> str:
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
