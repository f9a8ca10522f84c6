"""Core kinds pass kubernetes-validate --strict for every supported Kubernetes version.

Custom kinds are routed to their own strict schemas (test_crd_schema.py): kubernetes-validate only
warns "Couldn't find schema" for them and would count that as a pass.
"""

from __future__ import annotations

import copy
import json
import re

import kubernetes_validate.utils as kubernetes_validate
import pytest

from tests.support.manifests.objects import Obj, ref
from tests.support.manifests.schemas import SUPPORTED_KUBERNETES_VERSIONS, validator_family


def unique(objects: list[tuple[str, Obj]], family: str) -> list[Obj]:
    seen: dict[str, Obj] = {}
    for _, obj in objects:
        if validator_family(obj) == family:
            seen.setdefault(json.dumps(obj, sort_keys=True), obj)
    return list(seen.values())


def test_every_object_has_a_strict_validator(all_objects: list[tuple[str, Obj]]) -> None:
    families = {validator_family(obj) for _, obj in all_objects}
    assert families == {"core", "kserve", "hand"}


@pytest.mark.parametrize("version", SUPPORTED_KUBERNETES_VERSIONS)
def test_core_kinds_validate_strictly(all_objects: list[tuple[str, Obj]], version: str) -> None:
    failures = []
    for obj in unique(all_objects, "core"):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as error:
            failures.append(f"{ref(obj)}: {error}")
    assert failures == []


def test_strict_mode_rejects_a_misspelt_field(all_objects: list[tuple[str, Obj]]) -> None:
    [pdb] = [obj for obj in unique(all_objects, "core") if obj["kind"] == "PodDisruptionBudget"][:1]
    misspelt = copy.deepcopy(pdb)
    misspelt["spec"]["maxUnavailabel"] = misspelt["spec"].pop("maxUnavailable")
    kubernetes_validate.validate(pdb, SUPPORTED_KUBERNETES_VERSIONS[-1], strict=True)
    with pytest.raises(kubernetes_validate.ValidationError, match="maxUnavailabel"):
        kubernetes_validate.validate(misspelt, SUPPORTED_KUBERNETES_VERSIONS[-1], strict=True)


def test_unknown_custom_kind_has_no_silent_pass() -> None:
    with pytest.raises(LookupError, match=re.escape("no strict schema for example.com/v1 Widget")):
        validator_family({"apiVersion": "example.com/v1", "kind": "Widget"})
