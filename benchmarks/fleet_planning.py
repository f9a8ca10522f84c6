"""Packing benchmark: the shipped planner against CP-SAT's proven optimum, and the time to plan 1,000 models.

Targets: GPUs used <= 1.03 x the exact optimum on every instance whose optimum is proven: by CP-SAT within the
time limit (60 s in the full run), or by the plan meeting the lower bound; 1,000 models planned in <= 2 s. The
ratio and the speed are both measured in this run. The generator sizes each inventory so that the fleet fits; a
refused fleet is handed to CP-SAT, which says whether it is proved infeasible (the generator's fault) or placeable
(the planner's). Where no optimum is proven, the plan is compared with the best lower bound known (the planner's
or CP-SAT's).

    .venv/bin/python -m benchmarks.fleet_planning                       # 200 fleets, 60 s per exact solve
    .venv/bin/python -m benchmarks.fleet_planning --fleets 40 --exact-limit 10   # a few minutes

The full size needs about three hours of a quiet 2-core machine (most fleets use CP-SAT's whole limit), so it can
be run in parts: ``--rows-file rows.jsonl`` appends each fleet's row as it finishes and, when started again,
skips the fleets the file already holds (each row carries its fleet's fingerprint, the seed, the limit and a
digest of the planner's source, and a row that does not match this run is refused). The summary covers every
row in the file. ``--first N --fleets M`` plans fleets N to M-1 only: with their baselines cached (below), two
parts can run side by side on one rows file, a core each. ``--proven-only`` plans only the fleets whose cached
baseline CP-SAT proved optimal: the only ones the ratio target can fail on (any other fleet either meets the
lower bound, so its ratio is 1, or has no proven optimum), so it checks the target in minutes; a later run on
the same rows file adds the other fleets.

CP-SAT's one-minute solves are most of that time and do not depend on the planner's later steps, so
``--exact-cache exact.jsonl`` keeps each instance's baseline across runs, keyed by the instance, the limit and a
digest of the code the baseline depends on (the model and the start it is given: see ``EXACT_CODE``): after a
change to the planner's search, a new run costs the planner's time only. The baselines solved so far for the
default run (seed 16, 60 s) are kept in the repository, ``benchmarks/results/fleet_planning_exact.jsonl``: pass
it as ``--exact-cache`` to reuse them (all 200 fleets of the default run are there; a quiet hour solves about 60).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from gpu_planning.catalog import CATALOG
from gpu_planning.exact import solve_exact
from gpu_planning.fleet import Fleet, Inventory
from gpu_planning.heuristic import plan_heuristic
from gpu_planning.plan import REFINE_MAX_REPLICAS, plan_fleet
from gpu_planning.problem import build_problem
from gpu_planning.refine import refine
from serving_core.errors import InvalidInputError

PRODUCTS = list(CATALOG)


def random_fleet(rng: random.Random, size: int) -> Fleet:
    models = []
    for index in range(size):
        kind = rng.random()
        # Mostly small models, some mid-sized, a few that need most of a large GPU.
        if kind < 0.7:
            need = rng.randint(1_500, 10_000)
        elif kind < 0.9:
            need = rng.randint(10_000, 40_000)
        else:
            need = rng.randint(40_000, 130_000)
        models.append(
            {
                "name": f"m{index}",
                "namespace": rng.choice(["team-a", "team-b"]),
                "memory_mib": need,
                "replicas": rng.choice([1, 1, 1, 2, 3]),
                "latency_class": rng.choice(["realtime", "standard", "batch"]),
                "may_share": rng.random() < 0.85,
            }
        )
    return Fleet.model_validate({"models": models})


def random_inventory(rng: random.Random, fleet: Fleet) -> Inventory:
    """Random nodes with room for the fleet: the generator makes fleets that fit, so a refusal is the planner's.

    Replicas above 80 GB fit only an H200 and those above 46 GB only an 80 GB-class GPU (or an H200), so each gets
    a GPU of its own on a node of such GPUs; the rest get random products sized to about 1.3x their whole-GPU
    replicas plus their shareable memory.
    """
    h100 = CATALOG["H100-80GB"].memory_mib
    huge = sum(m.replicas for m in fleet.models if m.memory_mib > h100)
    large = sum(m.replicas for m in fleet.models if CATALOG["L40S"].memory_mib < m.memory_mib <= h100)
    rest = [m for m in fleet.models if m.memory_mib <= CATALOG["L40S"].memory_mib]
    whole = sum(m.replicas for m in rest if not m.may_share)
    shared = sum(m.memory_mib * m.replicas for m in rest if m.may_share)
    wanted = int((whole + shared / 40_000) * 1.3) + 2
    nodes: list[dict[str, Any]] = [{"name": "big-0", "gpu": "H200-141GB", "gpus": huge + 2}]
    if large:
        nodes.append({"name": "big-1", "gpu": "H100-80GB", "gpus": large})
    count = 0
    while count < wanted:
        product = rng.choice(PRODUCTS)
        gpus = rng.choice([1, 2, 4, 8])
        nodes.append({"name": f"n{len(nodes)}", "gpu": product, "gpus": gpus})
        count += gpus
    return Inventory.model_validate({"nodes": nodes})


def fingerprint(fleet: Fleet, inventory: Inventory) -> str:
    """A short digest of one instance, so a resumed run can tell its fleets from another generator's."""
    text = json.dumps([fleet.model_dump(mode="json"), inventory.model_dump(mode="json")], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def planner_code() -> str:
    """A digest of the planner's source: rows planned by other code must not be mixed into one result."""
    digest = hashlib.sha256()
    for path in sorted(Path(plan_fleet.__code__.co_filename).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


EXACT_CODE = ("catalog.py", "exact.py", "fleet.py", "heuristic.py", "problem.py", "refine.py")
"""The files of gpu_planning/ CP-SAT's baseline depends on: its model, and the plan it starts from (first-fit
decreasing and ruin and recreate); not the planner's later steps (plan.py, lns.py)."""


def exact_code() -> str:
    """A digest of :data:`EXACT_CODE`: a cached baseline computed by other code is not reused."""
    folder = Path(plan_fleet.__code__.co_filename).parent
    digest = hashlib.sha256()
    for name in EXACT_CODE:
        digest.update(name.encode() + b"\0" + (folder / name).read_bytes())
    return digest.hexdigest()[:16]


class ExactCache:
    """CP-SAT's baseline per instance, appended to a JSON-lines file as each is solved and reused by later runs."""

    FIELDS = ("exact", "exact_optimal", "exact_bound", "exact_s")

    def __init__(self, path: Path | None, exact_limit: float) -> None:
        self.path, self.exact_limit, self.code = path, exact_limit, exact_code()
        self.entries: dict[str, dict[str, Any]] = {}
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line) if line.strip() else {}
                if entry.get("exact_limit") == exact_limit and entry.get("exact_code") == self.code:
                    self.entries[entry["instance"]] = entry

    def get(self, instance: str) -> dict[str, Any] | None:
        """The baseline's fields for ``instance`` (None when not solved by this code and limit)."""
        entry = self.entries.get(instance)
        return None if entry is None else {field: entry[field] for field in self.FIELDS}

    def put(self, instance: str, fields: dict[str, Any]) -> None:
        """Keep ``fields`` for ``instance`` (in the file at once: a kill loses one solve)."""
        entry = {"instance": instance, "exact_limit": self.exact_limit, "exact_code": self.code, **fields}
        self.entries[instance] = entry
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")


def earlier_rows(rows_file: Path | None, seed: int, exact_limit: float) -> dict[int, dict[str, Any]]:
    """The rows an earlier part of this run wrote, by fleet index; a row from another run is refused."""
    if rows_file is None or not rows_file.exists():
        return {}
    code = planner_code()
    rows: dict[int, dict[str, Any]] = {}
    for number, line in enumerate(rows_file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("seed") != seed or row.get("exact_limit") != exact_limit:
            raise SystemExit(
                f"{rows_file}:{number} is from a run with seed {row.get('seed')} and --exact-limit "
                f"{row.get('exact_limit')}, not {seed} and {exact_limit:g}: use another --rows-file or the same options"
            )
        if row.get("planner_code") != code:
            raise SystemExit(
                f"{rows_file}:{number} was planned by other planner code ({row.get('planner_code')}, now {code}): "
                "gpu_planning/ changed since, so start a new --rows-file"
            )
        rows[row["fleet"]] = row
    return rows


def packing(
    fleets: int,
    exact_limit: float,
    seed: int,
    rows_file: Path | None = None,
    exact_cache: Path | None = None,
    first: int = 0,
    proven_only: bool = False,
) -> dict[str, Any]:
    rng = random.Random(seed)
    done = earlier_rows(rows_file, seed, exact_limit)
    cache = ExactCache(exact_cache, exact_limit)
    code = planner_code()
    rows = []
    for index in range(fleets):
        # Every fleet is generated, done or not, so the random stream (and so each fleet) is the same in every part.
        fleet = random_fleet(rng, rng.randint(10, 200))
        inventory = random_inventory(rng, fleet)
        instance = fingerprint(fleet, inventory)
        if index in done:
            if done[index].get("instance") != instance:
                earlier = done[index].get("instance")
                raise SystemExit(
                    f"{rows_file}: fleet {index} was generated differently (fingerprint {earlier} vs {instance}): "
                    "the generator changed since"
                )
            rows.append(done[index])
            continue
        if index < first:
            continue
        if proven_only and not (cache.get(instance) or {}).get("exact_optimal"):
            continue
        started = time.perf_counter()
        try:
            plan = plan_fleet(fleet, inventory)
        except InvalidInputError:
            # Was the fleet really unplaceable? Only CP-SAT's proof says so; otherwise the refusal is the planner's.
            proof = solve_exact(build_problem(fleet, inventory), time_limit_s=exact_limit, workers=2)
            verdict = "proved infeasible" if proof.infeasible else "feasible" if proof.solution else "unknown"
            rows.append({"fleet": index, "models": len(fleet.models), "refused": True, "exact": verdict})
            keep(rows[-1], rows_file, instance=instance, seed=seed, exact_limit=exact_limit, planner_code=code)
            continue
        planned_s = time.perf_counter() - started
        baseline = cache.get(instance)
        if baseline is None:
            baseline = solve_baseline(fleet, inventory, exact_limit, len(plan.assignments))
            cache.put(instance, baseline)
        else:
            baseline["exact_cached"] = True
        row = {
            "fleet": index,
            "models": len(fleet.models),
            "gpus_total": plan.gpus_total,
            "planner": plan.gpus_used,
            "planner_s": round(planned_s, 3),
            **baseline,
        }
        # Where no optimum is proven, the best bound known still caps how far from it the plan can be.
        bound = max(plan.lower_bound, row["exact_bound"], 1)
        row["bound_ratio"] = round(plan.gpus_used / bound, 4)
        if row["exact_optimal"] and row["exact"]:
            row["ratio"] = plan.gpus_used / row["exact"]
        elif plan.gpus_used == bound:
            # The plan meets a lower bound, so it is optimal, proven without CP-SAT (which may not have loaded the
            # model within the limit on a busy machine).
            row["ratio"], row["proof"] = 1.0, "plan meets the lower bound"
        rows.append(row)
        keep(row, rows_file, instance=instance, seed=seed, exact_limit=exact_limit, planner_code=code)
    proven = [row for row in rows if "ratio" in row]
    return {
        "instances": len(rows),
        "proven_optimal": len(proven),
        "worst_ratio": max((row["ratio"] for row in proven), default=None),
        "mean_ratio": statistics.mean(row["ratio"] for row in proven) if proven else None,
        "within_1_03": sum(row["ratio"] <= 1.03 for row in proven),
        "planner_s_max": max((row["planner_s"] for row in rows if "planner_s" in row), default=None),
        "refused": [row["exact"] for row in rows if row.get("refused")],
        "worst_bound_ratio": max((row["bound_ratio"] for row in rows if "bound_ratio" in row), default=None),
        "exact_better_unproven": sum(
            not row["exact_optimal"] and (row["exact"] or 10**9) < row["planner"] for row in rows if "planner" in row
        ),
        "rows": rows,
    }


def solve_baseline(fleet: Fleet, inventory: Inventory, exact_limit: float, replicas: int) -> dict[str, Any]:
    """CP-SAT on the whole instance (two workers), started from first-fit decreasing and ruin and recreate.

    The start is deterministic, and the optimum does not depend on it: a proof comes sooner, and CP-SAT's answer
    is never worse than that plan.
    """
    started = time.perf_counter()
    problem = build_problem(fleet, inventory)
    start = plan_heuristic(problem)[0]
    if start is not None and replicas <= REFINE_MAX_REPLICAS:
        start = refine(problem, start)
    exact = solve_exact(problem, time_limit_s=exact_limit, workers=2, hint=start)
    return {
        "exact": exact.gpus_used,
        "exact_optimal": exact.optimal,
        "exact_bound": exact.lower_bound,
        "exact_s": round(time.perf_counter() - started, 2),
    }


def keep(row: dict[str, Any], rows_file: Path | None, **identity: Any) -> None:
    """Print one fleet's row and, for a run in parts, append it to the rows file at once (a kill loses one fleet)."""
    row.update(identity)
    print(json.dumps(row), flush=True)
    if rows_file is not None:
        with rows_file.open("a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")


def speed(models: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    fleet = random_fleet(rng, models)
    inventory = random_inventory(rng, fleet)
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        plan = plan_fleet(fleet, inventory)
        timings.append(time.perf_counter() - started)
    return {"models": models, "replicas": len(plan.assignments), "gpus_total": plan.gpus_total,
            "gpus_used": plan.gpus_used, "lower_bound": plan.lower_bound, "seconds": timings}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fleets", type=int, default=200)
    parser.add_argument("--exact-limit", type=float, default=60.0, help="CP-SAT seconds per instance")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--json", help="write every row here")
    parser.add_argument("--rows-file", type=Path, help="JSON lines: append each fleet's row, skip fleets already there")
    parser.add_argument("--exact-cache", type=Path, help="JSON lines: CP-SAT's baseline per instance, kept across runs")
    parser.add_argument("--first", type=int, default=0, help="plan fleets from this one on (a part)")
    parser.add_argument(
        "--proven-only", action="store_true", help="plan only the fleets whose cached baseline is proven optimal"
    )
    args = parser.parse_args()
    if args.proven_only and args.exact_cache is None:
        parser.error(
            "--proven-only needs --exact-cache: which fleets are proven comes from the cached baselines "
            "(pass benchmarks/results/fleet_planning_exact.jsonl)"
        )
    fast = speed(1000, args.seed)
    print(f"1,000 models: {fast['replicas']} replicas on {fast['gpus_used']} of {fast['gpus_total']} GPUs "
          f"(bound {fast['lower_bound']}); seconds {[round(s, 3) for s in fast['seconds']]} (target <= 2)")  # fmt: skip
    result = packing(
        args.fleets, args.exact_limit, args.seed, args.rows_file, args.exact_cache, args.first, args.proven_only
    )
    print(
        f"packing: {result['instances']} fleets, {result['proven_optimal']} proven optimal (CP-SAT within "
        f"{args.exact_limit:g} s or plan = lower bound); "
        f"within 1.03x: {result['within_1_03']}/{result['proven_optimal']}; "
        f"worst ratio {result['worst_ratio']}, mean {result['mean_ratio']}; slowest plan {result['planner_s_max']} s; "
        f"refused {result['refused']}; CP-SAT better but unproven on {result['exact_better_unproven']}; "
        f"worst plan / best bound {result['worst_bound_ratio']}"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"speed": fast, "packing": result}, out, indent=1)


if __name__ == "__main__":
    main()
