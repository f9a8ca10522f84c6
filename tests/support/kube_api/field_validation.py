"""Unknown-field handling and schema validation, as kube-apiserver does them before storing an object.

``fieldValidation=Strict`` refuses unknown fields with 400 ``strict decoding error: unknown field "…"``;
``Warn`` (the default since Kubernetes 1.23) and ``Ignore`` drop them, ``Warn`` with one ``Warning``
header each. Custom resources are pruned against their CRD's structural schema, built-in kinds against
their known top-level fields, and ``metadata`` against ObjectMeta everywhere. What remains is validated
against the CRD schema (spec and status alike) with the API server's wording.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from typing import Any

import jsonschema
import yaml

from inference_services.crd_validation import ISVC_CRD_FILE, crd_directory
from inference_services.versions import KServeVersion
from tests.support.kube_api.errors import bad_request
from tests.support.kube_api.resources import INFERENCE_SERVICES, ResourceType

OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
    "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers",
    "managedFields",
})  # fmt: skip
_ROOT_FIELDS = frozenset({"apiVersion", "kind", "metadata"})
_REQUIRED = re.compile(r"^'(?P<name>.+)' is a required property$")
_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (dict, "object"),
               (list, "array"), (type(None), "null"))  # fmt: skip


@functools.cache
def crd_schema(version: KServeVersion) -> dict[str, Any]:
    """The InferenceService CRD's served v1beta1 openAPIV3Schema, as the API server loaded it."""
    major, minor, patch = version.parts
    path = crd_directory() / f"v{major}.{minor}.{patch}" / ISVC_CRD_FILE
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the file is 2 MB
    crd = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    [served] = [entry for entry in crd["spec"]["versions"] if entry["name"] == "v1beta1"]
    schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]
    return schema


def prune(kind: ResourceType, document: dict[str, Any], version: KServeVersion) -> tuple[dict[str, Any], list[str]]:
    """``document`` without unknown fields, and the unknown fields' paths in the order they appear."""
    unknown: list[str] = []
    pruned: dict[str, Any] = {}
    schema = crd_schema(version) if kind == INFERENCE_SERVICES else None
    for key, value in document.items():
        if key == "metadata" and isinstance(value, dict):
            pruned[key] = {field: item for field, item in value.items() if field in OBJECT_META_FIELDS}
            unknown += [f"metadata.{field}" for field in value if field not in OBJECT_META_FIELDS]
        elif schema is not None and key not in _ROOT_FIELDS:
            properties = schema.get("properties", {})
            if key in properties:
                pruned[key] = _prune(value, properties[key], key, unknown)
            else:
                unknown.append(key)
        elif kind.known_fields and key not in kind.known_fields and key not in _ROOT_FIELDS:
            unknown.append(key)
        else:
            pruned[key] = copy.deepcopy(value)
    return pruned, unknown


def _prune(value: Any, schema: dict[str, Any], path: str, unknown: list[str]) -> Any:
    if isinstance(value, list):
        items = schema.get("items")
        return [_prune(item, items, f"{path}[{index}]", unknown) if isinstance(items, dict) else item
                for index, item in enumerate(value)]  # fmt: skip
    if not isinstance(value, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return copy.deepcopy(value)
    properties = schema.get("properties")
    extra = schema.get("additionalProperties")
    if properties is None and not isinstance(extra, dict) and schema.get("type") != "object":
        return copy.deepcopy(value)
    result = {}
    for key, item in value.items():
        if properties and key in properties:
            result[key] = _prune(item, properties[key], f"{path}.{key}", unknown)
        elif isinstance(extra, dict):
            result[key] = _prune(item, extra, f"{path}.{key}", unknown)
        else:
            unknown.append(f"{path}.{key}")
    return result


def apply_field_validation(
    kind: ResourceType, document: dict[str, Any], directive: str, version: KServeVersion
) -> tuple[dict[str, Any], list[str]]:
    """The object to store and the ``Warning`` header values, for a ``fieldValidation`` directive.

    Raises:
        ApiStatusError: 400 strict decoding error with ``Strict`` and unknown fields; 400 for a bad directive.
    """
    if directive not in ("", "Ignore", "Warn", "Strict"):
        raise bad_request(
            f'fieldValidation parameter unsupported: "{directive}"; valid values are: Ignore, Warn, Strict'
        )
    pruned, unknown = prune(kind, document, version)
    problems = [f'unknown field "{path}"' for path in unknown]
    if problems and directive == "Strict":
        raise bad_request("strict decoding error: " + ", ".join(problems))
    warnings = [f"299 - {json.dumps(problem)}" for problem in problems] if directive in ("", "Warn") else []
    return pruned, warnings


@functools.cache
def _validator(version: KServeVersion) -> jsonschema.Draft7Validator:
    schema = copy.deepcopy(crd_schema(version))
    _drop_int_or_string_types(schema)
    return jsonschema.Draft7Validator(schema)


def _drop_int_or_string_types(node: Any) -> None:
    """``x-kubernetes-int-or-string`` fields take either; JSON schema's ``type`` would refuse one."""
    if isinstance(node, dict):
        if node.get("x-kubernetes-int-or-string"):
            node.pop("type", None)
        for value in node.values():
            _drop_int_or_string_types(value)
    elif isinstance(node, list):
        for item in node:
            _drop_int_or_string_types(item)


def _json_type(value: Any) -> str:
    return next(name for python_type, name in _JSON_TYPES if isinstance(value, python_type))


def _field(parts: Any) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts).lstrip(".")


def _problem(error: jsonschema.ValidationError) -> tuple[str, str]:
    """One schema error as ``(field, text)`` in kube-openapi's wording."""
    field = _field(error.absolute_path)
    value = error.instance
    if error.validator == "required" and (missing := _REQUIRED.match(error.message)):
        return f"{field}.{missing['name']}".lstrip("."), "Required value"
    if error.validator == "type":
        actual = _json_type(value)
        return field, f'Invalid value: "{actual}": {field} in body must be of type {error.validator_value}: "{actual}"'
    if error.validator == "enum":
        supported = ", ".join(json.dumps(option) for option in error.validator_value)
        return field, f"Unsupported value: {json.dumps(value)}: supported values: {supported}"
    if error.validator == "minimum":
        return field, f"Invalid value: {json.dumps(value)}: {field} in body should be greater than or equal to " \
                      f"{error.validator_value}"  # fmt: skip
    if error.validator == "maximum":
        return field, f"Invalid value: {json.dumps(value)}: {field} in body should be less than or equal to " \
                      f"{error.validator_value}"  # fmt: skip
    return field, f"Invalid value: {json.dumps(value)}: {error.message}"


def schema_problems(document: dict[str, Any], version: KServeVersion) -> list[tuple[str, str]]:
    """Every violation of the CRD schema by a pruned InferenceService, in field order."""
    checked = {key: value for key, value in document.items() if key != "metadata"}
    errors = sorted(_validator(version).iter_errors(checked), key=lambda error: _field(error.absolute_path))
    return [_problem(error) for error in errors]
