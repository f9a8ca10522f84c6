"""managedFields as kube-apiserver keeps them for Update operations, through the real kubernetes client."""

from __future__ import annotations

from inference_services.connection import KubeClients


def managers(document: dict) -> dict[tuple[str, str], dict]:
    return {(entry["manager"], entry.get("subresource", "")): entry["fieldsV1"]
            for entry in document["metadata"]["managedFields"]}  # fmt: skip


def test_the_default_manager_is_the_user_agent_before_its_slash(clients: KubeClients, namespace: str) -> None:
    created = clients.core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "mf", "labels": {"a": "1"}}, "data": {"k": "v"}}
    )

    [entry] = created.metadata.managed_fields
    assert (entry.manager, entry.operation, entry.api_version) == ("OpenAPI-Generator", "Update", "v1")
    assert entry.fields_v1 == {"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}}


def test_field_manager_parameter_and_ownership_moving(clients: KubeClients, namespace: str) -> None:
    clients.core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "owned"}, "data": {"k": "v", "keep": "x"}}, field_manager="first"
    )

    patched = clients.core.patch_namespaced_config_map(
        "owned", namespace, {"data": {"k": "changed", "new": "n"}}, field_manager="second"
    ).to_dict()

    owned = {
        (entry["manager"], entry["operation"]): entry["fields_v1"] for entry in patched["metadata"]["managed_fields"]
    }
    assert owned == {
        ("first", "Update"): {"f:data": {".": {}, "f:keep": {}}},
        ("second", "Update"): {"f:data": {"f:k": {}, "f:new": {}}},
    }


def test_a_no_op_write_changes_nothing(clients: KubeClients, namespace: str) -> None:
    created = clients.core.create_namespaced_config_map(namespace, {"metadata": {"name": "same"}, "data": {"k": "v"}})

    again = clients.core.patch_namespaced_config_map("same", namespace, {"data": {"k": "v"}}, field_manager="other")

    assert again.metadata.resource_version == created.metadata.resource_version
    assert [entry.manager for entry in again.metadata.managed_fields] == ["OpenAPI-Generator"]
