"""Policy checks over rendered objects; each returns one message per problem, empty when clean."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.manifests.objects import Obj
from tests.support.manifests.policies.gpu import check_gpu_only_in_limits, check_gpu_scheduling, check_quota
from tests.support.manifests.policies.gpu_operator import check_device_plugin_config, check_mig_and_dcgm_config
from tests.support.manifests.policies.network import check_network_policies, check_pod_monitors
from tests.support.manifests.policies.rbac import check_rbac
from tests.support.manifests.policies.runtimes import (
    check_cluster_scoped,
    check_images_pinned,
    check_runtime_hardening,
    check_runtime_selection,
)
from tests.support.manifests.policies.scaling import (
    check_inference_service_scaling,
    check_pod_disruption_budgets,
    check_scaled_objects,
)

Policy = Callable[[list[Obj]], list[str]]

POLICIES: dict[str, Policy] = {
    "gpu_only_in_limits": check_gpu_only_in_limits,
    "quota": check_quota,
    "gpu_scheduling": check_gpu_scheduling,
    "pod_disruption_budgets": check_pod_disruption_budgets,
    "inference_service_scaling": check_inference_service_scaling,
    "scaled_objects": check_scaled_objects,
    "rbac": check_rbac,
    "network_policies": check_network_policies,
    "pod_monitors": check_pod_monitors,
    "device_plugin_config": check_device_plugin_config,
    "mig_and_dcgm_config": check_mig_and_dcgm_config,
    "images_pinned": check_images_pinned,
    "runtime_hardening": check_runtime_hardening,
    "runtime_selection": check_runtime_selection,
    "cluster_scoped": check_cluster_scoped,
}
