"""Large neighbourhood search: free GPUs of a complete plan by solving a few of its GPUs again with CP-SAT.

Each step takes a lightly used GPU and a few other GPUs in use that its models may run on, and asks CP-SAT to
place every replica on them again within those GPUs only, on as few of them as it can and, among those
placements, with the fewest replicas left on the lightly used GPU (so a later step can free it). The rest of the
plan stays: models with replicas outside keep their resource, nodes with GPUs outside keep their mode, namespace
quotas count what the rest takes. A step that lowers either is kept; so, in the first of two searches, is one
that keeps both (a sideways step: the plan drifts out of an arrangement no neighbourhood could improve).

"Lightly used" is the part of the GPU its replicas take (MIG slices, shares or memory, whichever is more), and a
GPU whose replicas can only ever take a whole GPU is never the one to free. Half of the steps draw the other
GPUs among those configured like the light one (MIG with MIG, shares with shares), since freeing one of them
usually means moving slices or shares between several of that kind; half may also open one idle GPU of a node
in the step, so that two part-used GPUs can move onto one fresh one.

Ruin and recreate (:mod:`gpu_planning.refine`) places models again one at a time in a fixed order; this finds
what that cannot: a time-sliced GPU is full at its share limit *or* its memory, and first-fit decreasing fills
some GPUs with large models (memory full, few shares) and others with small ones (every share taken, memory
half empty) where the optimum mixes one large model with several small ones. Steps use CP-SAT's deterministic
time and one worker and are drawn from a seeded generator, so a plan is reproducible.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict

from gpu_planning.exact import Scope, solve_exact
from gpu_planning.heuristic import Solution, used_gpus
from gpu_planning.problem import Problem, lower_bound, unit_fraction

LNS_STEPS = 60
"""Steps per search (two searches per plan): about 0.1-0.5 s each on fleets of 50-200 models
(benchmarks/fleet_planning.py)."""

NEIGHBOURHOOD_GPUS = (4, 6, 8, 10)
"""How many GPUs a step solves again (the lightly used one included), drawn at random."""

STEP_WORK = 0.5
"""CP-SAT's deterministic time for one step: most sub-problems are solved to optimality well within it."""

ALIKE_SHARE = 0.5
"""Share of steps whose other GPUs are drawn among those configured like the light one, where there are any."""

OPEN_SHARE = 0.5
"""Share of steps that may also open an idle GPU (the first idle one of a node already in the step)."""


def improve(problem: Problem, solution: Solution, *, steps: int = LNS_STEPS, seed: int = 1) -> Solution:
    """A plan using at most as many GPUs as ``solution`` (a new list; ``solution`` is not changed).

    Two searches from ``solution``, the better plan kept: one also keeps sideways steps (an answer as good as what
    it replaces), so the plan drifts and later steps see other neighbourhoods; one keeps only steps that lower the
    score, which holds on to a good arrangement of MIG or shared GPUs that drifting can lose. The second runs only
    when the first ends above the lower bound.
    """
    best = _search(problem, solution, steps=steps, seed=seed, sideways=True)
    if used_gpus(best) > lower_bound(problem):
        strict = _search(problem, solution, steps=steps, seed=seed, sideways=False)
        if used_gpus(strict) < used_gpus(best):
            best = strict
    return best


def _search(problem: Problem, solution: Solution, *, steps: int, seed: int, sideways: bool) -> Solution:
    """Up to ``steps`` steps from ``solution``; one is kept when it lowers the score (or, ``sideways``, keeps it)."""
    current = [list(placed) for placed in solution]
    bound = lower_bound(problem)
    rng = random.Random(seed)
    for _ in range(steps):
        if used_gpus(current) <= bound:
            break
        scope = _neighbourhood(problem, current, rng)
        if scope is None:
            break
        result = solve_exact(problem, time_limit_s=STEP_WORK, hint=current, scope=scope, deterministic=True)
        if result.solution is None:
            continue
        before, after = _score(current, scope), _score(result.solution, scope)
        if after > before or (after == before and not sideways):
            continue
        for m in scope.replicas:
            outside = [(g, unit) for g, unit in current[m] if g not in scope.gpus]
            current[m] = outside + result.solution[m]
    return current


def _score(solution: Solution, scope: Scope) -> tuple[int, int]:
    """GPUs of the scope in use, then replicas on the GPU to empty: what a step lowers."""
    on_gpus = [g for m in scope.replicas for g, _unit in solution[m] if g in scope.gpus]
    return len(set(on_gpus)), on_gpus.count(scope.emptied)


def _neighbourhood(problem: Problem, current: Solution, rng: random.Random) -> Scope | None:
    """A lightly used GPU (the lightest most often), a few GPUs it may share work with, and the rest fixed."""
    residents: dict[int, set[int]] = defaultdict(set)
    load: dict[int, float] = defaultdict(float)
    kinds: dict[int, set[str]] = defaultdict(set)
    for m, placed in enumerate(current):
        for g, unit in placed:
            residents[g].add(m)
            load[g] += unit_fraction(problem, g, unit, problem.fleet.models[m].memory_mib)
            kinds[g].add(unit.kind)
    used = sorted(residents, key=lambda g: (load[g], g))
    freeable = [g for g in used if any(_may_take_part_of_a_gpu(problem, m) for m in residents[g])]
    if len(used) < 2 or not freeable:
        return None
    target = freeable[int(len(freeable) * rng.random() ** 2)]
    reach = set().union(*(problem.options[m].keys() for m in residents[target]))
    others = [g for g in used if g != target and g in reach]
    alike = [g for g in others if kinds[g] == kinds[target]]
    if alike and rng.random() < ALIKE_SHARE:
        others = alike
    gpus = frozenset({target, *rng.sample(others, min(rng.choice(NEIGHBOURHOOD_GPUS) - 1, len(others)))})
    if rng.random() < OPEN_SHARE:
        gpus |= _idle_gpu(problem, gpus, reach - residents.keys(), rng)
    replicas: Counter[int] = Counter()
    quota_used: Counter[tuple[str, str]] = Counter()
    shared_outside: dict[str, bool] = {}
    for m, placed in enumerate(current):
        model = problem.fleet.models[m]
        for g, unit in placed:
            if g in gpus:
                replicas[m] += 1
            else:
                quota_used[model.namespace, unit.resource] += 1
                shared_outside[problem.gpus[g].node.name] = unit.kind == "time-sliced"
    # A model with replicas outside keeps its resource: an InferenceService asks for one.
    resources = {m: current[m][0][1].resource for m in replicas if replicas[m] < len(current[m])}
    nodes = {problem.gpus[g].node.name for g in gpus}
    node_modes = {name: shared for name, shared in shared_outside.items() if name in nodes}
    return Scope(gpus, dict(replicas), resources, node_modes, dict(quota_used), emptied=target)


def _may_take_part_of_a_gpu(problem: Problem, m: int) -> bool:
    """Whether model ``m`` may take a MIG instance or a time-sliced share somewhere (else only whole GPUs)."""
    return any(unit.kind != "whole" for units in problem.options[m].values() for unit in units.values())


def _idle_gpu(problem: Problem, gpus: frozenset[int], idle: set[int], rng: random.Random) -> frozenset[int]:
    """The first idle GPU of one of the nodes of ``gpus`` (drawn at random; none when they have none).

    Idle GPUs of one node are interchangeable, so the first of each is the only one worth a try.
    """
    nodes = {problem.gpus[g].node.name for g in gpus}
    first_idle: dict[str, int] = {}
    for g in sorted(idle):
        name = problem.gpus[g].node.name
        if name in nodes:
            first_idle.setdefault(name, g)
    return frozenset({first_idle[rng.choice(sorted(first_idle))]}) if first_idle else frozenset()
