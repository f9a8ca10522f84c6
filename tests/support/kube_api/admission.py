"""Admission, in kube-apiserver's order: NamespaceLifecycle, LimitRanger, PodSecurity, ResourceQuota.

Every create passes NamespaceLifecycle (404 ``namespaces "x" not found``, 403 while Terminating). Pods
also get LimitRange defaults and min/max checks, the namespace's Pod Security Standard
(``pod-security.kubernetes.io/enforce``, evaluated with pod-security-admission's checks and wording) and
ResourceQuota accounting; a refusal is 403 Forbidden worded as the real plugins word it. The objects
themselves get the API server's defaulting here too (Namespace phase and label, LimitRange defaults,
ResourceQuota status, as the quota controller would soon write it).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from tests.support.kube_api.errors import ApiStatusError, forbidden, namespace_not_found
from tests.support.kube_api.quantities import ZERO, Quantity, parse_quantity
from tests.support.kube_api.resources import EVENTS, LIMIT_RANGES, NAMESPACES, PODS, RESOURCE_QUOTAS, ResourceType
from tests.support.kube_api.store import ObjectStore

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
ENFORCE_VERSION_LABEL = "pod-security.kubernetes.io/enforce-version"
# Quota keys that every container must request explicitly once a quota names them (pods.go's validationSet).
_MUST_SPECIFY = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "cpu", "memory")
_BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP",
    "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})  # fmt: skip


def admit(store: ObjectStore, kind: ResourceType, namespace: str, document: dict[str, Any]) -> dict[str, Any]:
    """The object as admission lets it be created.

    Raises:
        ApiStatusError: 404 when the namespace does not exist, 403 when a plugin refuses.
    """
    # Defaulting (requests from limits, …) comes before admission, so quota sees the defaulted pod.
    document = default(kind, copy.deepcopy(document))
    name = document.get("metadata", {}).get("name") or document.get("metadata", {}).get("generateName", "")
    if kind.namespaced:
        space = store.find(NAMESPACES, "", namespace)
        if space is None:
            raise namespace_not_found(namespace)
        # Events may still be written while a namespace terminates (NamespaceLifecycle's exception).
        if "deletionTimestamp" in space["metadata"] and kind != EVENTS:
            why = f"unable to create new content in namespace {namespace} because it is being terminated"
            causes = [{"reason": "NamespaceTerminating", "message": why, "field": "metadata.namespace"}]
            raise forbidden(kind, name, why, causes)
        if kind == PODS:
            _limit_ranger(store, namespace, name, document)
            _pod_security(space, name, document)
            _resource_quota(store, namespace, name, document)
    return document


def default(kind: ResourceType, document: dict[str, Any]) -> dict[str, Any]:
    """API defaulting of the kinds whose defaults matter to admission."""
    if kind == NAMESPACES:
        metadata = document.setdefault("metadata", {})
        metadata.setdefault("labels", {})["kubernetes.io/metadata.name"] = metadata.get("name", "")
        document.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        document.setdefault("status", {}).setdefault("phase", "Active")
    elif kind == LIMIT_RANGES:
        for item in document.get("spec", {}).get("limits") or []:
            if item.get("type") == "Container":
                for resource, amount in (item.get("max") or {}).items():
                    item.setdefault("default", {}).setdefault(resource, amount)
                for resource, amount in (item.get("default") or {}).items():
                    item.setdefault("defaultRequest", {}).setdefault(resource, amount)
    elif kind == PODS:
        for container in document.get("spec", {}).get("containers") or []:
            resources = container.setdefault("resources", {})
            # Pod defaulting: a resource with a limit and no request requests its limit.
            for resource, amount in (resources.get("limits") or {}).items():
                resources.setdefault("requests", {}).setdefault(resource, amount)
    return document


def _aggregate(errors: list[str]) -> str:
    return errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"


# -- LimitRanger ------------------------------------------------------------------------------------


def _limit_ranger(store: ObjectStore, namespace: str, name: str, pod: dict[str, Any]) -> None:
    ranges, _ = store.list(LIMIT_RANGES, namespace)
    errors: list[str] = []
    for limit_range in ranges:
        for item in limit_range.get("spec", {}).get("limits") or []:
            if item.get("type") != "Container":
                continue
            for container in pod.get("spec", {}).get("containers") or []:
                resources = container.setdefault("resources", {})
                for resource, amount in (item.get("default") or {}).items():
                    resources.setdefault("limits", {}).setdefault(resource, amount)
                for resource, amount in (item.get("defaultRequest") or {}).items():
                    resources.setdefault("requests", {}).setdefault(resource, amount)
                errors += _range_errors(item, resources)
    if errors:
        raise forbidden(PODS, name, _aggregate(errors))


def _range_errors(item: dict[str, Any], resources: dict[str, Any]) -> list[str]:
    errors = []
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    for resource, minimum in (item.get("min") or {}).items():
        request = requests.get(resource)
        if request is None:
            errors.append(f"minimum {resource} usage per Container is {minimum}.  No request is specified")
        elif parse_quantity(request).value < parse_quantity(minimum).value:
            errors.append(f"minimum {resource} usage per Container is {minimum}, but request is {request}")
    for resource, maximum in (item.get("max") or {}).items():
        limit = limits.get(resource)
        if limit is None:
            errors.append(f"maximum {resource} usage per Container is {maximum}.  No limit is specified")
        elif parse_quantity(limit).value > parse_quantity(maximum).value:
            errors.append(f"maximum {resource} usage per Container is {maximum}, but limit is {limit}")
    return errors


# -- PodSecurity ------------------------------------------------------------------------------------


def _names(noun: str, names: list[str]) -> str:
    quoted = ", ".join(json.dumps(name) for name in names)
    return f"{noun}s {quoted}" if len(names) > 1 else f"{noun} {quoted}"


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod.get("spec", {})
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def _security(container: dict[str, Any]) -> dict[str, Any]:
    return container.get("securityContext") or {}


def _those(pod: dict[str, Any], wrong: Callable[[dict[str, Any]], bool]) -> list[str]:
    return [container["name"] for container in _containers(pod) if wrong(container)]


def _host_namespaces(pod: dict[str, Any]) -> str | None:
    spec = pod.get("spec", {})
    used = [f"{field}=true" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]
    return f"host namespaces ({', '.join(used)})" if used else None


def _privileged(pod: dict[str, Any]) -> str | None:
    names = _those(pod, lambda c: _security(c).get("privileged") is True)
    return f"privileged ({_names('container', names)} must not set securityContext.privileged=true)" if names else None


def _added(container: dict[str, Any]) -> list[str]:
    return list((_security(container).get("capabilities") or {}).get("add") or [])


def _capabilities_baseline(pod: dict[str, Any]) -> str | None:
    problems = []
    for container in _containers(pod):
        extra = [cap for cap in _added(container) if cap not in _BASELINE_CAPABILITIES]
        if extra:
            quoted = ", ".join(json.dumps(cap) for cap in extra)
            problems.append(f"container {json.dumps(container['name'])} must not include {quoted} in "
                            "securityContext.capabilities.add")  # fmt: skip
    return f"non-default capabilities ({'; '.join(problems)})" if problems else None


def _host_path_volumes(pod: dict[str, Any]) -> str | None:
    names = [volume["name"] for volume in pod.get("spec", {}).get("volumes") or [] if "hostPath" in volume]
    return f"hostPath volumes ({_names('volume', names)})" if names else None


def _host_ports(pod: dict[str, Any]) -> str | None:
    problems = []
    for container in _containers(pod):
        ports = [str(port["hostPort"]) for port in container.get("ports") or [] if port.get("hostPort")]
        if ports:
            problems.append(f"container {json.dumps(container['name'])} uses hostPort{'s' if len(ports) > 1 else ''} "
                            + ", ".join(ports))  # fmt: skip
    return f"hostPort ({'; '.join(problems)})" if problems else None


def _allow_privilege_escalation(pod: dict[str, Any]) -> str | None:
    names = _those(pod, lambda c: _security(c).get("allowPrivilegeEscalation") is not False)
    if not names:
        return None
    return f"allowPrivilegeEscalation != false ({_names('container', names)} must set " \
           "securityContext.allowPrivilegeEscalation=false)"  # fmt: skip


def _capabilities_restricted(pod: dict[str, Any]) -> str | None:
    problems = []
    no_drop = _those(pod, lambda c: "ALL" not in ((_security(c).get("capabilities") or {}).get("drop") or []))
    if no_drop:
        problems.append(f'{_names("container", no_drop)} must set securityContext.capabilities.drop=["ALL"]')
    for container in _containers(pod):
        extra = [cap for cap in _added(container) if cap != "NET_BIND_SERVICE"]
        if extra:
            quoted = ", ".join(json.dumps(cap) for cap in extra)
            problems.append(f"container {json.dumps(container['name'])} must not include {quoted} in "
                            "securityContext.capabilities.add")  # fmt: skip
    return f"unrestricted capabilities ({'; '.join(problems)})" if problems else None


def _run_as_non_root(pod: dict[str, Any]) -> str | None:
    pod_value = (pod.get("spec", {}).get("securityContext") or {}).get("runAsNonRoot")
    problems = []
    if pod_value is False:
        problems.append("pod must not set securityContext.runAsNonRoot=false")
    explicit_false = _those(pod, lambda c: _security(c).get("runAsNonRoot") is False)
    if explicit_false:
        problems.append(f"{_names('container', explicit_false)} must not set securityContext.runAsNonRoot=false")
    if pod_value is not True:
        unset = _those(pod, lambda c: _security(c).get("runAsNonRoot") is None)
        if unset and pod_value is None:
            problems.append(f"pod or {_names('container', unset)} must set securityContext.runAsNonRoot=true")
    return f"runAsNonRoot != true ({'; '.join(problems)})" if problems else None


def _run_as_user(pod: dict[str, Any]) -> str | None:
    problems = []
    if (pod.get("spec", {}).get("securityContext") or {}).get("runAsUser") == 0:
        problems.append("pod must not set runAsUser=0")
    root = _those(pod, lambda c: _security(c).get("runAsUser") == 0)
    if root:
        problems.append(f"{_names('container', root)} must not set runAsUser=0")
    return f"runAsUser=0 ({'; '.join(problems)})" if problems else None


def _seccomp_profile(pod: dict[str, Any]) -> str | None:
    allowed = ("RuntimeDefault", "Localhost")
    pod_type = ((pod.get("spec", {}).get("securityContext") or {}).get("seccompProfile") or {}).get("type")
    problems = []
    if pod_type is not None and pod_type not in allowed:
        problems.append(f'pod must not set securityContext.seccompProfile.type to "{pod_type}"')
    wrong = _those(pod, lambda c: (_security(c).get("seccompProfile") or {}).get("type") not in (None, *allowed))
    if wrong:
        problems.append(f'{_names("container", wrong)} must not set securityContext.seccompProfile.type to '
                        'an unallowed value')  # fmt: skip
    if pod_type is None:
        unset = _those(pod, lambda c: (_security(c).get("seccompProfile") or {}).get("type") is None)
        if unset:
            problems.append(f'pod or {_names("container", unset)} must set securityContext.seccompProfile.type to '
                            '"RuntimeDefault" or "Localhost"')  # fmt: skip
    return f"seccompProfile ({'; '.join(problems)})" if problems else None


# Check IDs as pod-security-admission registers them; its message lists failures in ID order.
_BASELINE = {
    "capabilities_baseline": _capabilities_baseline,
    "hostNamespaces": _host_namespaces,
    "hostPathVolumes": _host_path_volumes,
    "hostPorts": _host_ports,
    "privileged": _privileged,
}
_RESTRICTED = {
    **{key: check for key, check in _BASELINE.items() if key != "capabilities_baseline"},
    "allowPrivilegeEscalation": _allow_privilege_escalation,
    "capabilities_restricted": _capabilities_restricted,
    "runAsNonRoot": _run_as_non_root,
    "runAsUser": _run_as_user,
    "seccompProfile_restricted": _seccomp_profile,
}
_LEVELS = {"privileged": {}, "baseline": _BASELINE, "restricted": _RESTRICTED}


def pod_security_violations(level: str, pod: dict[str, Any]) -> list[str]:
    """What ``pod`` breaks of the Pod Security Standard ``level``, in pod-security-admission's words."""
    checks = _LEVELS[level]
    found = (checks[check_id](pod) for check_id in sorted(checks))
    return [problem for problem in found if problem is not None]


def _pod_security(space: dict[str, Any], name: str, pod: dict[str, Any]) -> None:
    labels = space["metadata"].get("labels") or {}
    level = labels.get(ENFORCE_LABEL, "privileged")
    if level not in _LEVELS:
        return  # an invalid level is reported on the namespace, not enforced (the plugin defaults it)
    problems = pod_security_violations(level, pod)
    if problems:
        version = labels.get(ENFORCE_VERSION_LABEL, "latest")
        raise forbidden(PODS, name, f'violates PodSecurity "{level}:{version}": ' + ", ".join(problems))


# -- ResourceQuota ----------------------------------------------------------------------------------


def pod_usage(pod: dict[str, Any]) -> dict[str, Quantity]:
    """What a pod counts against a quota: ``pods``, ``requests.*``, ``limits.*``, ``cpu``/``memory``."""
    usage: dict[str, Quantity] = {"pods": parse_quantity(1), "count/pods": parse_quantity(1)}
    for container in pod.get("spec", {}).get("containers") or []:
        resources = container.get("resources") or {}
        for section in ("requests", "limits"):
            for resource, amount in (resources.get(section) or {}).items():
                keys = [f"{section}.{resource}"]
                if section == "requests" and resource in ("cpu", "memory", "ephemeral-storage"):
                    keys.append(resource)
                for key in keys:
                    usage[key] = usage.get(key, ZERO) + parse_quantity(amount)
    return usage


def namespace_usage(store: ObjectStore, namespace: str) -> dict[str, Quantity]:
    """The summed usage of the namespace's pods that still count (not Succeeded or Failed)."""
    pods, _ = store.list(PODS, namespace)
    total: dict[str, Quantity] = {}
    for pod in pods:
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for key, amount in pod_usage(pod).items():
            total[key] = total.get(key, ZERO) + amount
    return total


def quota_status(hard: dict[str, Any], usage: dict[str, Quantity]) -> dict[str, Any]:
    """``status`` of a ResourceQuota as the quota controller writes it."""
    return {"hard": dict(hard), "used": {key: str(usage.get(key, ZERO)) for key in hard}}


def _missing_requests(pod: dict[str, Any], required: set[str]) -> str | None:
    missing: dict[str, list[str]] = {}
    for container in pod.get("spec", {}).get("containers") or []:
        resources = container.get("resources") or {}
        for key in sorted(required):
            section, _, resource = key.rpartition(".")
            present = resources.get(section or "requests") or {}
            if resource not in present:
                missing.setdefault(key, []).append(container["name"])
    if not missing:
        return None
    return "must specify " + "; ".join(
        f"{key} for: {','.join(sorted(names))}" for key, names in sorted(missing.items())
    )


def _pretty(values: dict[str, Quantity]) -> str:
    return ",".join(f"{key}={values[key]}" for key in sorted(values))


def _resource_quota(store: ObjectStore, namespace: str, name: str, pod: dict[str, Any]) -> None:
    quotas, _ = store.list(RESOURCE_QUOTAS, namespace)
    if not quotas:
        return
    requested = pod_usage(pod)
    used = namespace_usage(store, namespace)
    for quota in quotas:
        hard = quota.get("status", {}).get("hard") or quota.get("spec", {}).get("hard") or {}
        quota_name = quota["metadata"]["name"]
        unmet = _missing_requests(pod, set(hard) & set(_MUST_SPECIFY))
        if unmet is not None:
            raise forbidden(PODS, name, f"failed quota: {quota_name}: {unmet}")
        exceeded = [key for key in hard if key in requested
                    and (used.get(key, ZERO) + requested[key]).value > parse_quantity(hard[key]).value]  # fmt: skip
        if exceeded:
            raise forbidden(
                PODS,
                name,
                f"exceeded quota: {quota_name}, requested: {_pretty({key: requested[key] for key in exceeded})}, "
                f"used: {_pretty({key: used.get(key, ZERO) for key in exceeded})}, "
                f"limited: {_pretty({key: parse_quantity(hard[key]) for key in exceeded})}",
            )


def refresh_quota_status(store: ObjectStore, namespace: str) -> None:
    """Write every quota's ``status.used`` in ``namespace``, as the quota controller does after a change."""
    quotas, _ = store.list(RESOURCE_QUOTAS, namespace)
    if not quotas:
        return
    usage = namespace_usage(store, namespace)
    for quota in quotas:
        status = quota_status(quota.get("spec", {}).get("hard") or {}, usage)
        try:
            store.update(RESOURCE_QUOTAS, namespace, quota["metadata"]["name"], {"status": status}, status_only=True,
                         require_resource_version=False, manager="kube-controller-manager")  # fmt: skip
        except ApiStatusError:
            continue  # deleted meanwhile
