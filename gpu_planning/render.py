"""What a plan turns into: deploy-fleet's model list, per-model GPU settings, the GPU Operator's configs, a report.

- ``deploy_fleet_models``: the ``models`` parameter of the deploy-fleet pipeline.
- ``deployment_settings``: per model, the deployment-config fields the plan decides (``gpu``, tolerations,
  replicas), in the shape of ``aiserving deploy``'s config.
- ``mig_parted_config``: the mig-manager ConfigMap's ``config.yaml`` (one named config per MIG node) and
  ``node_labels``: the ``nvidia.com/mig.config`` and ``nvidia.com/device-plugin.config`` label of each node.
- ``device_plugin_configs``: the device-plugin ConfigMap's entries the labels name.
- ``markdown`` and ``svg``: the report and its picture of every node's GPUs.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape
from typing import Any

from gpu_planning.catalog import MEMORY_SLICES, gpu_product
from gpu_planning.fleet import Fleet
from gpu_planning.plan import FleetPlan, GpuLayout, shares_per_node

MIG_STRATEGY = "mixed"  # each GPU of a node may have its own layout, and profiles are their own resources


def deploy_fleet_models(fleet: Fleet, plan: FleetPlan) -> list[dict[str, Any]]:
    """The deploy-fleet pipeline's ``models`` list: one item per model with the resource the plan gave it."""
    resource = {(a.namespace, a.model): a.resource for a in plan.assignments}
    return [
        {
            "model_uri": model.model_uri,
            "runtime": model.runtime,
            "image": model.image,
            "isvc_name": model.name,
            "gpu_count": 1,
            "gpu_resource": resource[model.namespace, model.name],
            "canary_percent": model.canary_percent,
        }
        for model in fleet.models
    ]


def deployment_settings(fleet: Fleet, plan: FleetPlan) -> dict[str, dict[str, Any]]:
    """Per model name: the deployment-config fields the plan decides."""
    by_model: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for assignment in plan.assignments:
        by_model[assignment.namespace, assignment.model].append(assignment)
    products = {(layout.node, layout.gpu): layout.product for layout in plan.gpus}
    settings = {}
    for model in fleet.models:
        placed = by_model[model.namespace, model.name]
        first = placed[0]
        gpu: dict[str, Any] = {
            "count": 1,
            "sharing": first.unit,
            "products": sorted(
                {label for a in placed for label in gpu_product(products[a.node, a.gpu]).gfd_products[:1]}
            ),
        }
        if first.unit == "mig":
            gpu |= {"mig_profile": first.mig_profile, "mig_strategy": MIG_STRATEGY}
        tolerations = [t.model_dump(exclude_none=True) for t in model.tolerations]
        settings[model.name] = {
            "name": model.name,
            "namespace": model.namespace,
            "gpu": gpu,
            **({"tolerations": tolerations} if tolerations else {}),
            "autoscaling": {"min_replicas": model.replicas, "max_replicas": model.replicas},
        }
    return settings


def mig_parted_config(plan: FleetPlan) -> dict[str, Any]:
    """The mig-parted ``config.yaml``: ``all-disabled`` plus one config per node with a MIG GPU."""
    configs: dict[str, Any] = {"all-disabled": [{"devices": "all", "mig-enabled": False}]}
    by_node: dict[str, list[GpuLayout]] = defaultdict(list)
    for layout in plan.gpus:
        by_node[layout.node].append(layout)
    for node, layouts in by_node.items():
        if not any(layout.mode == "mig" for layout in layouts):
            continue
        entries = []
        for layout in layouts:
            if layout.mode == "mig":
                counts: dict[str, int] = defaultdict(int)
                for instance in layout.mig:
                    counts[instance.profile] += 1
                entries.append(
                    {"devices": [layout.gpu], "mig-enabled": True, "mig-devices": dict(sorted(counts.items()))}
                )
            else:
                entries.append({"devices": [layout.gpu], "mig-enabled": False})
        configs[f"plan-{node}"] = entries
    return {"version": "v1", "mig-configs": configs}


def device_plugin_configs(plan: FleetPlan) -> dict[str, dict[str, Any]]:
    """Device-plugin ConfigMap entries: ``mig-mixed`` for MIG nodes and ``ts-N`` for each share count used."""
    configs: dict[str, dict[str, Any]] = {}
    if any(layout.mode == "mig" for layout in plan.gpus):
        configs["mig-mixed"] = {"version": "v1", "flags": {"migStrategy": MIG_STRATEGY}}
    for replicas in sorted(set(shares_per_node(plan).values())):
        configs[f"ts-{replicas}"] = {
            "version": "v1",
            "flags": {"migStrategy": "none"},
            "sharing": {
                "timeSlicing": {
                    "renameByDefault": True,
                    "failRequestsGreaterThanOne": True,
                    "resources": [{"name": "nvidia.com/gpu", "replicas": replicas}],
                }
            },
        }
    return configs


def node_labels(plan: FleetPlan) -> dict[str, dict[str, str]]:
    """The labels that select each node's MIG layout and device-plugin config."""
    shares = shares_per_node(plan)
    mig_nodes = {layout.node for layout in plan.gpus if layout.mode == "mig"}
    labels = {}
    for node in dict.fromkeys(layout.node for layout in plan.gpus):
        if node in mig_nodes:
            labels[node] = {"nvidia.com/mig.config": f"plan-{node}", "nvidia.com/device-plugin.config": "mig-mixed"}
        elif node in shares:
            labels[node] = {
                "nvidia.com/mig.config": "all-disabled",
                "nvidia.com/device-plugin.config": f"ts-{shares[node]}",
            }
        else:
            labels[node] = {"nvidia.com/mig.config": "all-disabled"}
    return labels


def markdown(fleet: Fleet, plan: FleetPlan, *, image: str = "fleet-plan.svg") -> str:
    """The plan as a Markdown report: the summary, the picture, each node's GPUs and each model's placement."""
    lines = [
        "# GPU fleet plan",
        "",
        f"{len(fleet.models)} models, {len(plan.assignments)} replicas on **{plan.gpus_used} of {plan.gpus_total} "
        f"GPUs** (lower bound {plan.lower_bound}; solver: {plan.solver}).",
        "",
        f"![GPU layout per node]({image})",
        "",
        "| node | GPU | product | mode | runs |",
        "|---|---:|---|---|---|",
    ]
    for layout in plan.gpus:
        if layout.mode == "mig":
            runs = ", ".join(f"{i.profile}@{i.start}: {i.model or 'free'}" for i in layout.mig)
        else:
            runs = ", ".join(layout.models) or "—"
        lines.append(f"| {layout.node} | {layout.gpu} | {layout.product} | {layout.mode} | {runs} |")
    lines += ["", "| model | namespace | replicas | unit | resource | placed on |", "|---|---|---:|---|---|---|"]
    for model in fleet.models:
        placed = [a for a in plan.assignments if a.model == model.name and a.namespace == model.namespace]
        where = ", ".join(f"{a.node}/{a.gpu}" for a in placed)
        unit = placed[0].mig_profile or placed[0].unit
        lines.append(
            f"| {model.name} | {model.namespace} | {model.replicas} | {unit} | `{placed[0].resource}` | {where} |"
        )
    return "\n".join(lines) + "\n"


_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
_BOX_W, _BOX_H, _GAP, _LABEL_W = 220, 56, 12, 170


def svg(plan: FleetPlan) -> str:
    """A picture of every node's GPUs: one row per node, one box per GPU, MIG instances at their memory slices."""
    by_node: dict[str, list[GpuLayout]] = defaultdict(list)
    for layout in plan.gpus:
        by_node[layout.node].append(layout)
    models = sorted({name for layout in plan.gpus for name in layout.models})
    colour = {name: _COLOURS[i % len(_COLOURS)] for i, name in enumerate(models)}
    width = _LABEL_W + max(len(gpus) for gpus in by_node.values()) * (_BOX_W + _GAP) + _GAP
    height = len(by_node) * (_BOX_H + _GAP) + _GAP
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="10">'
    ]
    for row, (node, layouts) in enumerate(by_node.items()):
        y = _GAP + row * (_BOX_H + _GAP)
        parts.append(f'<text x="4" y="{y + _BOX_H / 2}">{escape(node)} ({escape(layouts[0].product)})</text>')
        for column, layout in enumerate(layouts):
            x = _LABEL_W + column * (_BOX_W + _GAP)
            parts.append(f'<rect x="{x}" y="{y}" width="{_BOX_W}" height="{_BOX_H}" fill="#eee" stroke="#333"/>')
            parts += _cells(layout, x, y, colour)
            parts.append(f'<text x="{x + 2}" y="{y - 2}">GPU {layout.gpu} · {layout.mode}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _cells(layout: GpuLayout, x: int, y: int, colour: dict[str, str]) -> list[str]:
    def cell(left: float, span: float, name: str | None, label: str) -> str:
        fill = colour.get(name or "", "#fff")
        return (
            f'<rect x="{left:.1f}" y="{y}" width="{span:.1f}" height="{_BOX_H}" fill="{fill}" stroke="#333"/>'
            f'<text x="{left + 3:.1f}" y="{y + _BOX_H / 2 + 3}" fill="#000">{escape(label)}</text>'
        )

    slot = _BOX_W / MEMORY_SLICES
    if layout.mode == "mig":
        return [
            cell(x + i.start * slot, i.memory_slices * slot, i.model, f"{i.profile} {i.model or 'free'}")
            for i in layout.mig
        ]
    if layout.mode == "whole":
        return [cell(x, _BOX_W, layout.models[0], layout.models[0])]
    if layout.mode == "time-sliced":
        share = _BOX_W / len(layout.models)
        return [cell(x + i * share, share, name, name) for i, name in enumerate(layout.models)]
    return []
