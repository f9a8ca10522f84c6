"""Ruin and recreate: free GPUs of a complete plan by taking the models off a few GPUs and placing them again.

Each step picks a GPU to free (the least full most often) and a few other GPUs in use that its models could go to
("helpers"), takes every model on them off the plan (all of a model's replicas, wherever they are, so the
one-resource rule holds), and places those models again: biggest first with a random jitter, each trying its
resources smallest part first or, now and then, in a random order (a time-sliced share may give way to an idle
MIG slice); each replica goes into the fullest GPU in use where it fits, else into an emptied helper, never into
the GPU being freed. The step is kept when every model found a place, so the plan uses at least one GPU less;
otherwise it is undone. It stops at the lower bound, when its budget of placements is spent, or when a stretch of
placements freed nothing; the steps are seeded, so a plan is reproducible.
"""

from __future__ import annotations

import functools
import random
from collections import defaultdict

from gpu_planning.heuristic import Solution, State, commit_moves, place_replicas, rank
from gpu_planning.problem import Problem, Unit, lower_bound, unit_fraction

REFINE_PLACEMENTS = 20_000
"""Replica placements the refinement may spend in all (a step places again the replicas it took off)."""

REFINE_STALL_PLACEMENTS = 8_000
"""Placements without freeing a GPU after which the refinement gives up: most GPUs it frees come early."""

HELPER_GPUS = (1, 2, 2, 3, 4)
"""How many other GPUs a step empties with the one it tries to free, drawn at random."""

SHUFFLE_UNITS = 0.3
"""How often a model placed again tries its resources in a random order rather than smallest part first."""

Placed = list[tuple[int, Unit]]


def refine(problem: Problem, solution: Solution) -> Solution:
    """A plan using at most as many GPUs as ``solution`` (a new list; ``solution`` is not changed)."""
    models, ranking = problem.fleet.models, rank(problem)
    state = State(problem)
    for m, placed in enumerate(solution):
        for gpu, unit in placed:
            state.place(gpu, unit, models[m].memory_mib, models[m].namespace)
    current = [list(placed) for placed in solution]
    residents: dict[int, set[int]] = defaultdict(set)
    for m, placed in enumerate(current):
        for gpu, _unit in placed:
            residents[gpu].add(m)
    # A GPU holding only models with one resource would come back as it was.
    movable = {m for m, resources in enumerate(ranking.resources) if len(resources) > 1}
    rng = random.Random(1)  # seeded: the same input gives the same plan
    spent = 0
    bound = lower_bound(problem)
    plan_changed, last_gain = True, 0
    while spent < REFINE_PLACEMENTS and spent - last_gain <= REFINE_STALL_PLACEMENTS:
        if plan_changed:  # an undone step leaves every GPU as full as it was
            used = sorted((g for g, ms in residents.items() if ms), key=lambda g: (_fullness(state, g), g))
            candidates = [g for g in used if residents[g] & movable]
            plan_changed = False
        if len(used) <= bound or not candidates:
            break
        # The least full GPUs most often: they are the ones a better plan frees.
        target = candidates[int(len(candidates) * rng.random() ** 2)]
        reach = set().union(*(problem.options[m].keys() for m in residents[target]))
        reachable = [g for g in used if g != target and g in reach]
        helpers = rng.sample(reachable, min(rng.choice(HELPER_GPUS), len(reachable)))
        movers = sorted({m for g in (target, *helpers) for m in residents[g]})
        for m in movers:
            for gpu, unit in current[m]:
                state.unplace(gpu, unit, models[m].memory_mib, models[m].namespace)
        jitter = {m: rng.uniform(0.7, 1.3) for m in movers}
        spare = set(helpers)
        moved: dict[int, Placed] = {}
        for m in sorted(movers, key=lambda m: -ranking.smallest[m] * jitter[m]):
            # Now and then another resource first: a share may give way to an idle MIG slice, and so on.
            resources = ranking.resources[m]
            if rng.random() < SHUFFLE_UNITS:
                resources = rng.sample(resources, len(resources))
            placement = place_replicas(
                problem, state, m, resources, functools.partial(_spare_gpu, problem, state, m, spare=spare)
            )
            spent += models[m].replicas
            if placement is None:
                break
            moved[m] = placement
        if len(moved) == len(movers):
            commit_moves(moved, current, residents)
            plan_changed, last_gain = True, spent
            continue
        for m, placed in moved.items():
            for gpu, unit in placed:
                state.unplace(gpu, unit, models[m].memory_mib, models[m].namespace)
        for m in movers:
            for gpu, unit in current[m]:
                state.place(gpu, unit, models[m].memory_mib, models[m].namespace)
    return current


def _fullness(state: State, gpu: int) -> float:
    """How full a GPU is: a whole GPU is full; an unused one is empty."""
    return 1.0 if state.gpus[gpu].mode == "whole" else state.fullness(gpu)


def _spare_gpu(problem: Problem, state: State, m: int, resource: str, spare: set[int]) -> tuple[int, Unit] | None:
    """The unused GPU of ``spare`` that the unit fills the most (a whole GPU: the smallest that holds it)."""
    model = problem.fleet.models[m]
    best: tuple[tuple[float, int, int], int, Unit] | None = None
    for g in spare:
        unit = problem.options[m].get(g, {}).get(resource)
        if unit is None or state.gpus[g].mode is not None or not state.fits(g, unit, model.memory_mib):
            continue
        key = (-unit_fraction(problem, g, unit, model.memory_mib), problem.gpus[g].product.memory_mib, g)
        if best is None or key < best[0]:
            best = (key, g, unit)
    return None if best is None else (best[1], best[2])
