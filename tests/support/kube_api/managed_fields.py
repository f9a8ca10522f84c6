"""``metadata.managedFields`` for Update operations, the way kube-apiserver's field manager keeps them.

Each write is an ``Update`` by a manager (the ``fieldManager`` query parameter, else the User-Agent
up to its first ``/``: ``OpenAPI-Generator`` for the Python client). The writer comes to own every
field it set or changed; other managers lose those fields; removed fields leave every set. Lists are
treated as atomic (one field each), as a CRD's lists without ``x-kubernetes-list-type`` are.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

Path = tuple[str, ...]

# Fields that belong to the server, never to a manager.
_SERVER_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                    "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")  # fmt: skip
_MAP = object()


def manager_from_user_agent(user_agent: str) -> str:
    """The default field manager: the User-Agent before its first ``/``, as ``prefixFromUserAgent`` does."""
    return user_agent.split("/")[0]


def _tracked(document: dict[str, Any], subresource: str, status_apart: bool) -> dict[str, Any]:
    if subresource == "status":
        return {"status": document["status"]} if "status" in document else {}
    tracked = {key: value for key, value in document.items() if key not in ("apiVersion", "kind")}
    if status_apart:
        tracked.pop("status", None)
    metadata = {key: value for key, value in tracked.get("metadata", {}).items() if key not in _SERVER_METADATA}
    tracked["metadata"] = metadata
    return tracked


def _flatten(value: dict[str, Any], prefix: Path = ()) -> dict[Path, Any]:
    flat: dict[Path, Any] = {}
    for key, item in value.items():
        path = (*prefix, key)
        if isinstance(item, dict) and item:
            flat[path] = _MAP
            flat.update(_flatten(item, path))
        else:
            flat[path] = item
    return flat


def _to_paths(fields: dict[str, Any], prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for key, children in fields.items():
        if key == ".":
            paths.add(prefix)
        elif key.startswith("f:"):
            path = (*prefix, key[2:])
            if children:
                paths |= _to_paths(children, path)
            else:
                paths.add(path)
    return paths


def _to_fields(paths: set[Path], flat: dict[Path, Any]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for part in path:
            node = node.setdefault(f"f:{part}", {})
        if flat.get(path) is _MAP:
            node["."] = {}
    return root


def _is_top(path: Path) -> bool:
    # "metadata" itself always exists; only its fields are owned.
    return path == ("metadata",)


def updated_entries(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    subresource: str = "",
    status_apart: bool = False,
) -> list[dict[str, Any]]:
    """The managedFields of ``new`` after ``manager`` wrote it over ``old`` (None for a create)."""
    entries = [dict(entry) for entry in ((old or {}).get("metadata", {}).get("managedFields") or [])]
    sent = new.get("metadata", {}).get("managedFields")
    if sent and sent != entries:
        # A writer may replace the managedFields; a single empty entry clears them.
        entries = [dict(entry) for entry in sent if entry]
    old_flat = _flatten(_tracked(old, subresource, status_apart)) if old is not None else {}
    new_flat = _flatten(_tracked(new, subresource, status_apart))
    changed = {path for path, value in new_flat.items()
               if not _is_top(path) and (path not in old_flat or (old_flat[path] != value))}  # fmt: skip
    removed = set(old_flat) - set(new_flat)
    api_version = new.get("apiVersion", "")
    result: list[dict[str, Any]] = []
    mine: dict[str, Any] | None = None
    for entry in entries:
        if entry.get("subresource", "") != subresource:
            result.append(entry)  # the other endpoint's fields (main resource vs status) are not touched
        elif (entry.get("manager"), entry.get("operation")) == (manager, "Update"):
            mine = entry
        elif paths := _to_paths(entry.get("fieldsV1") or {}) - changed - removed:
            result.append({**entry, "fieldsV1": _to_fields(paths, new_flat)})
    owned = (_to_paths(mine.get("fieldsV1") or {}) if mine else set()) - removed | changed
    if owned:
        entry = {"manager": manager, "operation": "Update", "apiVersion": api_version,
                 "time": mine["time"] if mine and not changed else datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "fieldsType": "FieldsV1", "fieldsV1": _to_fields(owned, new_flat)}  # fmt: skip
        if subresource:
            entry["subresource"] = subresource
        result.append(entry)
    return result
