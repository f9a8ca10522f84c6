"""Component: place a fleet of models on a cluster's GPUs (aiserving plan-fleet) for deploy-fleet."""

from kfp import dsl

from components.image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def plan_fleet(
    fleet: str,
    inventory: str,
    time_limit_s: float,
    report: dsl.Output[dsl.Markdown],
    plan: dsl.Output[dsl.Artifact],
) -> list:  # type: ignore[type-arg]  # KFP accepts only a bare list here
    """Place every model replica on the fewest GPUs: whole GPUs, MIG slices or time-sliced shares.

    Args:
        fleet: The fleet as YAML or JSON text (models with memory_mib, replicas, latency_class, may_share, ...;
            see docs/gpu-planning.md).
        inventory: The cluster's GPU nodes, their labels and taints, and namespace quotas, as YAML or JSON text.
        time_limit_s: Seconds CP-SAT may spend improving the plan of a small fleet.
        report: The plan as Markdown with a picture of each node's GPUs and what runs on them.
        plan: A directory with plan.json, fleet-models.json, deployments.yaml, the mig-parted config, the
            device-plugin config and the node labels.

    Returns:
        The deploy-fleet ``models`` list (each model's isvc_name, image and GPU resource from the plan).
    """
    from aiserving.steps.fleet_plan import plan_fleet_step

    return plan_fleet_step(fleet, inventory, time_limit_s, report=report, plan_files=plan)
