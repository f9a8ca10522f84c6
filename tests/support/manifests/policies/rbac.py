"""Role shape: no wildcards, bound to a ServiceAccount of the same namespace."""

from __future__ import annotations

from tests.support.manifests.objects import Obj, name_of, namespace_of, of_kind, ref


def check_rbac(objects: list[Obj]) -> list[str]:
    problems = []
    for role in of_kind(objects, "Role") + of_kind(objects, "ClusterRole"):
        for index, rule in enumerate(role.get("rules") or []):
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                if any("*" in str(value) for value in rule.get(field) or []):
                    problems.append(f"{ref(role)}: rules[{index}].{field} has a wildcard; list what is used")
    accounts = {(namespace_of(sa), name_of(sa)) for sa in of_kind(objects, "ServiceAccount")}
    roles = {(namespace_of(role), name_of(role)) for role in of_kind(objects, "Role")}
    for binding in of_kind(objects, "RoleBinding"):
        role_ref = binding.get("roleRef", {})
        if role_ref.get("kind") == "Role" and (namespace_of(binding), role_ref.get("name")) not in roles:
            problems.append(f"{ref(binding)}: binds Role {role_ref.get('name')}, which is not in this namespace")
        for subject in binding.get("subjects") or []:
            if subject.get("kind") != "ServiceAccount":
                continue
            if subject.get("namespace") != namespace_of(binding):
                problems.append(
                    f"{ref(binding)}: subject {subject.get('name')} is in another namespace "
                    f"({subject.get('namespace')})"
                )
            elif (subject.get("namespace"), subject.get("name")) not in accounts:
                problems.append(f"{ref(binding)}: ServiceAccount {subject.get('name')} is not part of the manifests")
    return problems
