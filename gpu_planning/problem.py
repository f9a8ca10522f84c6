"""The placement problem both planners solve: which GPUs each model may use, and in which unit.

An InferenceService asks for one resource name, so every replica of a model takes the same kind of unit:
``nvidia.com/gpu`` (a whole GPU), ``nvidia.com/mig-<profile>`` (a MIG instance, mixed strategy) or
``nvidia.com/gpu.shared`` (a time-sliced share). A model's candidate units are the ones some node it may run on
can offer with enough memory: on a GPU where it fits a MIG profile, the smallest such profile (a larger one holds
nothing more); a share only for models that may share and are not realtime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from gpu_planning.catalog import COMPUTE_SLICES, MEMORY_SLICES, GpuProduct, MigProfile, gpu_product
from gpu_planning.fleet import Fleet, FleetModel, Inventory, Node
from serving_core.errors import InvalidInputError

UnitKind = Literal["whole", "mig", "time-sliced"]
WHOLE = "nvidia.com/gpu"
SHARED = "nvidia.com/gpu.shared"


def mig_resource(profile: str) -> str:
    """The mixed-strategy resource name of a MIG profile."""
    return f"nvidia.com/mig-{profile}"


@dataclass(frozen=True)
class Gpu:
    """One physical GPU of the inventory."""

    node: Node
    index: int
    product: GpuProduct

    @property
    def fixed_layout(self) -> tuple[str, ...] | None:
        """The MIG layout the node keeps, if any."""
        return tuple(self.node.mig_layout) if self.node.mig_layout is not None else None


@dataclass(frozen=True)
class Unit:
    """What one replica takes on one GPU."""

    kind: UnitKind
    resource: str
    profile: MigProfile | None = None


@dataclass(frozen=True, eq=False)
class Problem:
    """The fleet, the inventory's GPUs and, per model, the units it may take on each GPU."""

    fleet: Fleet
    inventory: Inventory
    gpus: tuple[Gpu, ...]
    node_gpus: tuple[tuple[int, ...], ...]
    # node_options[m][n] = {resource: unit} of model m on each GPU of node n; absent: it cannot use that node.
    node_options: tuple[dict[int, dict[str, Unit]], ...]

    @cached_property
    def options(self) -> tuple[dict[int, dict[str, Unit]], ...]:
        """Per model, per GPU index: the units the model may take there (the node's, for each of its GPUs)."""
        return tuple(
            {g: units for n, units in per_node.items() for g in self.node_gpus[n]} for per_node in self.node_options
        )

    def quota(self, namespace: str, resource: str) -> int | None:
        """The namespace's quota on ``resource``, or None when it has none."""
        return self.inventory.quotas.get(namespace, {}).get(f"requests.{resource}")


def _eligible(model: FleetModel, node: Node) -> bool:
    labels_match = all(node.labels.get(key) == value for key, value in model.node_selector.items())
    return labels_match and all(taint.tolerated_by(model.tolerations) for taint in node.taints)


def units_on(model: FleetModel, gpu: Gpu) -> dict[str, Unit]:
    """The units ``model`` may take on ``gpu``, by resource name (its node's labels and taints checked apart)."""
    node, product, need = gpu.node, gpu.product, model.memory_mib
    units: dict[str, Unit] = {}
    if need > product.memory_mib:
        return units
    layout = gpu.fixed_layout
    if layout is not None:
        fitting = [product.profile(name) for name in set(layout) if product.profile(name).memory_mib >= need]
        if model.may_share and fitting:
            best = min(fitting, key=lambda p: (p.memory_mib, p.compute_slices))
            units[mig_resource(best.name)] = Unit("mig", mig_resource(best.name), best)
        return units
    units[WHOLE] = Unit("whole", WHOLE)
    if model.may_share and node.allow_mig:
        fitting = [p for p in product.mig_profiles if p.memory_mib >= need and p.compute_slices < 7]
        if fitting:
            best = min(fitting, key=lambda p: (p.memory_mib, p.compute_slices))
            units[mig_resource(best.name)] = Unit("mig", mig_resource(best.name), best)
    if model.may_share and model.latency_class != "realtime" and node.allow_time_slicing:
        units[SHARED] = Unit("time-sliced", SHARED)
    return units


def build_problem(fleet: Fleet, inventory: Inventory) -> Problem:
    """Expand the inventory into GPUs and find each model's units on each.

    Raises:
        InvalidInputError: a model is bigger than every GPU it may run on, or no node takes it.
    """
    gpus: list[Gpu] = []
    node_gpus: list[tuple[int, ...]] = []
    for node in inventory.nodes:
        node_gpus.append(tuple(range(len(gpus), len(gpus) + node.gpus)))
        gpus += [Gpu(node, index, gpu_product(node.gpu)) for index in range(node.gpus)]
    # Units depend on the model's need and sharing rules and on the node's kind, not on the model's name.
    cache: dict[tuple[object, ...], dict[str, Unit]] = {}
    eligible_nodes: dict[tuple[object, ...], list[int]] = {}
    node_kinds = [
        (node.gpu, node.allow_mig, node.allow_time_slicing, tuple(node.mig_layout or ()), node.mig_layout is None)
        for node in inventory.nodes
    ]
    options = []
    for model in fleet.models:
        rules = (tuple(sorted(model.node_selector.items())), tuple(model.tolerations))
        if rules not in eligible_nodes:
            eligible_nodes[rules] = [n for n, node in enumerate(inventory.nodes) if _eligible(model, node)]
        model_kind = (model.memory_mib, model.may_share, model.latency_class == "realtime")
        per_node: dict[int, dict[str, Unit]] = {}
        for n in eligible_nodes[rules]:
            key = (model_kind, node_kinds[n])
            if key not in cache:
                cache[key] = units_on(model, gpus[node_gpus[n][0]])
            if cache[key]:
                per_node[n] = cache[key]
        if not per_node:
            eligible = [node for node in inventory.nodes if _eligible(model, node)]
            if not eligible:
                raise InvalidInputError(
                    f"model {model.name}: no node matches its node_selector {model.node_selector} and tolerates "
                    "its taints",
                    hint="fix the model's node_selector/tolerations or add a matching node to the inventory",
                )
            largest = max(eligible, key=lambda node: gpu_product(node.gpu).memory_mib)
            raise InvalidInputError(
                f"model {model.name} needs {model.memory_mib} MiB per replica, more than any GPU it may run on "
                f"(largest: {largest.gpu} on {largest.name}, {gpu_product(largest.gpu).memory_mib} MiB"
                + (", with a fixed MIG layout" if largest.mig_layout is not None else "")
                + ")",
                hint="quantize or shard the model, lower --max-batch-size, or add a larger GPU",
            )
        options.append(per_node)
    return Problem(fleet, inventory, tuple(gpus), tuple(node_gpus), tuple(options))


def unit_parts(problem: Problem, gpu: int, unit: Unit, need_mib: int) -> tuple[float, float]:
    """The parts of GPU ``gpu`` one replica in ``unit`` takes: (compute, memory), each at most 1 per GPU.

    Compute is MIG compute slices over 7, or one time slice over the share cap; memory is MIG memory slices over 8,
    or the replica's need over the GPU's memory. A whole GPU takes all of both.
    """
    product = problem.gpus[gpu].product
    if unit.profile is not None:
        return unit.profile.compute_slices / COMPUTE_SLICES, unit.profile.memory_slices / MEMORY_SLICES
    if unit.kind == "time-sliced":
        return 1 / product.max_time_slices, need_mib / product.memory_mib
    return 1.0, 1.0


def unit_fraction(problem: Problem, gpu: int, unit: Unit, need_mib: int) -> float:
    """The part of GPU ``gpu`` one replica in ``unit`` takes: the larger of its compute and memory parts."""
    return max(unit_parts(problem, gpu, unit, need_mib))


def lower_bound(problem: Problem) -> int:
    """GPUs no plan can go below: per dimension, every replica's smallest part of any GPU it may use, summed.

    A GPU's compute parts add up to at most 1 and so do its memory parts, so each sum rounded up is a bound; a sum
    of the larger part of each replica would not be (a 3g + 2g + 1g + 1g layout sums to more than 1).
    """
    compute = memory = 0.0
    for m, per_node in enumerate(problem.node_options):
        model = problem.fleet.models[m]
        distinct = {id(units): (n, units) for n, units in per_node.items()}
        parts = [
            unit_parts(problem, problem.node_gpus[n][0], unit, model.memory_mib)
            for n, units in distinct.values()
            for unit in units.values()
        ]
        compute += min(part for part, _memory in parts) * model.replicas
        memory += min(part for _compute, part in parts) * model.replicas
    return math.ceil(max(compute, memory) - 1e-9)
