"""The request-to-RBAC mapping that the Role coverage check relies on."""

from __future__ import annotations

import pytest

from tests.support.manifests.rbac_calls import ApiCall, allowed_calls, api_call, coverage_problems

ISVCS = "/apis/serving.kserve.io/v1beta1/namespaces/ns/inferenceservices"


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("GET", f"{ISVCS}/m", ApiCall("serving.kserve.io", "inferenceservices", "get")),
        ("GET", ISVCS, ApiCall("serving.kserve.io", "inferenceservices", "list")),
        ("GET", f"{ISVCS}?watch=true&resourceVersion=5", ApiCall("serving.kserve.io", "inferenceservices", "watch")),
        ("GET", f"{ISVCS}?watch=1", ApiCall("serving.kserve.io", "inferenceservices", "watch")),
        ("POST", ISVCS, ApiCall("serving.kserve.io", "inferenceservices", "create")),
        ("PUT", f"{ISVCS}/m", ApiCall("serving.kserve.io", "inferenceservices", "update")),
        ("PATCH", f"{ISVCS}/m", ApiCall("serving.kserve.io", "inferenceservices", "patch")),
        ("DELETE", f"{ISVCS}/m", ApiCall("serving.kserve.io", "inferenceservices", "delete")),
        ("DELETE", ISVCS, ApiCall("serving.kserve.io", "inferenceservices", "deletecollection")),
        ("GET", f"{ISVCS}/m/status", ApiCall("serving.kserve.io", "inferenceservices/status", "get")),
        ("GET", "/api/v1/namespaces/ns/pods?labelSelector=a%3Db", ApiCall("", "pods", "list")),
        ("GET", "/api/v1/namespaces/ns/pods/p/log", ApiCall("", "pods/log", "get")),
        ("GET", "http://127.0.0.1:1234/api/v1/namespaces/ns/events", ApiCall("", "events", "list")),
    ],
)
def test_request_maps_to_rbac_call(method: str, url: str, expected: ApiCall) -> None:
    assert api_call(method, url) == expected


@pytest.mark.parametrize("path", ["/version", "/api/v1/nodes", "/apis/serving.kserve.io/v1beta1"])
def test_non_namespaced_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="path"):
        api_call("GET", path)


ROLE = {
    "kind": "Role",
    "metadata": {"name": "r", "namespace": "ns"},
    "rules": [
        {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"], "verbs": ["get", "patch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
    ],
}


def test_role_expands_to_calls() -> None:
    assert allowed_calls(ROLE) == {
        ApiCall("serving.kserve.io", "inferenceservices", "get"),
        ApiCall("serving.kserve.io", "inferenceservices", "patch"),
        ApiCall("", "events", "list"),
    }


def test_coverage_reports_missing_and_unused_calls() -> None:
    used = {ApiCall("serving.kserve.io", "inferenceservices", "get"), ApiCall("", "pods", "list")}
    assert coverage_problems(used, ROLE) == [
        "Role ns/r: does not allow 'list pods', which the deploy client makes",
        "Role ns/r: allows 'list events', which the deploy client never makes",
        "Role ns/r: allows 'patch inferenceservices.serving.kserve.io', which the deploy client never makes",
    ]


def test_wildcards_are_refused() -> None:
    with pytest.raises(ValueError, match="wildcard in verbs"):
        allowed_calls({**ROLE, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]})
