"""Image labels from the package: ``org.opencontainers.image.*`` plus our lineage labels.

``lineage.json`` (written by ``aiserving download``) and ``package.json`` (written by the
packaging step) are read when present; only known scalar fields become labels, so a label
never carries a credential or an arbitrary blob.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from serving_core.errors import InvalidInputError

LINEAGE_FILE = "lineage.json"
PACKAGE_FILE = "package.json"
OCI_PREFIX = "org.opencontainers.image."
LABEL_PREFIX = "ai.creativeflow."

# lineage.json field → label suffix under ai.creativeflow.model.
_LINEAGE_LABELS = {
    "name": "name",
    "version": "version",
    "requested_uri": "requested-uri",
    "run_id": "run-id",
    "model_id": "model-id",
    "source": "source",
    "content_digest": "content-digest",
}
# package.json field (either spelling) → label suffix under ai.creativeflow.package.
_PACKAGE_LABELS = {
    "runtime": "runtime",
    "model_format": "model-format",
    "modelFormat": "model-format",
    "model_format_version": "model-format-version",
    "protocol": "protocol",
    "protocol_version": "protocol",
    "protocolVersion": "protocol",
    "package_digest": "digest",
    "digest": "digest",
    "lineage_digest": "lineage-digest",
}


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InvalidInputError(
            f"{path} is not valid JSON: {error}", hint="rebuild the package or remove the file"
        ) from error
    if not isinstance(document, dict):
        raise InvalidInputError(f"{path} is not a JSON object", hint="rebuild the package or remove the file")
    return document


def _scalar(value: Any) -> str | None:
    if isinstance(value, dict):
        # package.json may write modelFormat as {"name": ..., "version": ...}
        value = value.get("name")
    if isinstance(value, list):
        return ",".join(str(item) for item in value) or None
    if value is None or isinstance(value, dict):
        return None
    return str(value)


def package_labels(package_dir: Path, *, image_format: str) -> dict[str, str]:
    """Labels for an image built from ``package_dir``.

    Raises:
        InvalidInputError: ``lineage.json`` or ``package.json`` exists but is not a JSON object.
    """
    lineage = _read_json(package_dir / LINEAGE_FILE)
    package = _read_json(package_dir / PACKAGE_FILE)
    labels: dict[str, str] = {f"{LABEL_PREFIX}image.format": image_format}
    for field, suffix in _LINEAGE_LABELS.items():
        if (text := _scalar(lineage.get(field))) is not None:
            labels[f"{LABEL_PREFIX}model.{suffix}"] = text
    if aliases := _scalar(lineage.get("aliases")):
        labels[f"{LABEL_PREFIX}model.aliases"] = aliases
    for field, suffix in _PACKAGE_LABELS.items():
        if (text := _scalar(package.get(field))) is not None:
            labels.setdefault(f"{LABEL_PREFIX}package.{suffix}", text)
    model_format = package.get("modelFormat") or package.get("model_format")
    if isinstance(model_format, dict) and model_format.get("version"):
        labels.setdefault(f"{LABEL_PREFIX}package.model-format-version", str(model_format["version"]))

    title = _scalar(lineage.get("name")) or _scalar(package.get("name")) or package_dir.absolute().name
    labels[f"{OCI_PREFIX}title"] = title
    if version := _scalar(lineage.get("version")):
        labels[f"{OCI_PREFIX}version"] = version
    if run_id := _scalar(lineage.get("run_id")):
        labels[f"{OCI_PREFIX}revision"] = run_id
    if source := _scalar(lineage.get("source")):
        labels[f"{OCI_PREFIX}source"] = source
    description = f"{image_format} image of model {title}" + (f" version {version}" if version else "")
    labels[f"{OCI_PREFIX}description"] = description
    return labels
