"""Validate InferenceServices against KServe's published CRD schema, as a strict API server does.

The CRDs ship as package data (``inference_services/crds/v<tag>/``, read with :mod:`importlib.resources`;
provenance and license in ``crds/PROVENANCE.md``), one folder per KServe tag; ``$KSERVE_CRD_DIR`` names
another folder of the same layout instead. The schema is made strict the way the API server's ``fieldValidation=Strict``
behaves: every object with ``properties`` and without ``x-kubernetes-preserve-unknown-fields`` rejects
unknown fields. CEL rules (``x-kubernetes-validations``) are not evaluated.
"""

from __future__ import annotations

import copy
import functools
import os
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from inference_services.versions import KServeVersion
from serving_core.errors import InvalidInputError, NotFoundError
from serving_core.kube_objects import Document, metadata

CRD_DIR_ENV = "KSERVE_CRD_DIR"
ISVC_CRD_FILE = "serving.kserve.io_inferenceservices.yaml"


def crd_directory() -> Traversable:
    """The folder that holds one sub-folder of CRDs per KServe tag: ``$KSERVE_CRD_DIR``, else the shipped copies."""
    configured = os.environ.get(CRD_DIR_ENV)
    return Path(configured) if configured else files("inference_services") / "crds"


def available_crd_versions() -> list[KServeVersion]:
    """The KServe tags whose InferenceService CRD is present, oldest first."""
    root = crd_directory()
    if not root.is_dir():
        return []
    return sorted(
        KServeVersion.parse(entry.name)
        for entry in root.iterdir()
        if entry.is_dir() and (entry / ISVC_CRD_FILE).is_file()
    )


def crd_version_for(target: KServeVersion) -> KServeVersion:
    """The newest CRD copy not newer than ``target`` (the fields ``target`` is sure to know).

    Raises:
        NotFoundError: no CRD copy at or below ``target``.
    """
    candidates = [version for version in available_crd_versions() if version <= target]
    if not candidates:
        raise NotFoundError(
            f"no KServe InferenceService CRD at or below {target} under {crd_directory()}",
            hint=f"set {CRD_DIR_ENV} to a folder with v<version>/{ISVC_CRD_FILE} sub-folders",
        )
    return candidates[-1]


def _crd_folder(version: KServeVersion) -> Traversable:
    major, minor, patch = version.parts
    return crd_directory() / f"v{major}.{minor}.{patch}"


def _adjust(node: Any, *, strict: bool) -> None:
    """Apply the recipe of ../shared/kserve-crds/README.md in place.

    int-or-string properties lose ``type`` (their ``anyOf`` stays); with ``strict``, objects with
    ``properties`` and no ``x-kubernetes-preserve-unknown-fields`` reject unknown fields, as the API
    server's strict field validation does. CEL rules are not evaluated.
    """
    if isinstance(node, dict):
        if node.get("x-kubernetes-int-or-string"):
            node.pop("type", None)
        if strict and "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _adjust(value, strict=strict)
    elif isinstance(node, list):
        for item in node:
            _adjust(item, strict=strict)


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of a CRD's openAPIV3Schema that validates like the API server with strict field validation."""
    strict = copy.deepcopy(schema)
    _adjust(strict, strict=True)
    return strict


@functools.cache
def _raw_schema(version: KServeVersion) -> dict[str, Any]:
    path = _crd_folder(version) / ISVC_CRD_FILE
    if not path.is_file():
        raise NotFoundError(
            f"KServe {version} InferenceService CRD not found at {path}",
            hint=f"unset {CRD_DIR_ENV} to use the shipped copies, or point it at v<version>/{ISVC_CRD_FILE} folders",
        )
    # The file is 2 MB: the C loader reads it in a second, the pure-Python one in ten.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    served = [entry for entry in crd["spec"]["versions"] if entry["name"] == "v1beta1"]
    schema: dict[str, Any] = served[0]["schema"]["openAPIV3Schema"]
    return schema


@functools.cache
def _validator(version: KServeVersion, strict: bool) -> jsonschema.Draft7Validator:
    schema = copy.deepcopy(_raw_schema(version))
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
    _adjust(schema, strict=strict)
    return jsonschema.Draft7Validator(schema)


def _path(error: jsonschema.ValidationError) -> str:
    parts = [f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path]
    return "".join(parts).lstrip(".") or "<object>"


def schema_errors(document: Document, version: KServeVersion, *, strict: bool = True) -> list[str]:
    """Every schema violation of ``document`` as ``field.path: message``, sorted for stable output."""
    validator = _validator(version, strict)
    return sorted(f"{_path(error)}: {error.message}" for error in validator.iter_errors(document))


def validate_inference_service(document: Document, version: KServeVersion) -> None:
    """Check ``document`` against the strict CRD schema of KServe ``version``.

    Raises:
        InvalidInputError: the object would be rejected; the message lists every bad field.
    """
    errors = schema_errors(document, version)
    if errors:
        name = metadata(document).get("name", "<unnamed>")
        raise InvalidInputError(
            f"InferenceService {name!r} does not match the KServe {version} CRD schema: " + "; ".join(errors),
            hint="fix the listed fields in the deployment config, or target a KServe version that has them",
        )
