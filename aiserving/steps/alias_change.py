"""Step: does an alias point to another version than the live deployment's?"""

from __future__ import annotations

import logging

import yaml

from aiserving.steps.deploy import check_target, rendered_path
from mlflow_source import ModelUri, RegistryConnection
from mlflow_source.resolver import find_version
from serving_core import isvc_lineage
from serving_core.errors import InvalidInputError

log = logging.getLogger(__name__)


def _deployed_lineage(isvc_name: str, namespace: str, target: str) -> isvc_lineage.IsvcLineage | None:
    if target == "render":
        path = rendered_path(namespace, isvc_name)
        if not path.is_file():
            return None
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    else:
        from inference_services.connection import connect
        from inference_services.isvc_api import InferenceServiceApi

        document = InferenceServiceApi(connect(), namespace).find(isvc_name)
        if document is None:
            return None
    return isvc_lineage.read(document)


def alias_changed_step(
    model_uri: str, tracking_uri: str, registry_uri: str, isvc_name: str, namespace: str, target: str
) -> bool:
    """True when nothing is deployed or the alias points to a version other than the recorded one.

    Raises:
        InvalidInputError: the URI is not an alias URI.
    """
    check_target(target)
    uri = ModelUri.parse(model_uri)
    if uri.alias is None:
        raise InvalidInputError(
            f"{model_uri} does not name an alias", hint="deploy-on-alias-change follows models:/NAME@ALIAS"
        )
    connection = RegistryConnection.from_settings(tracking_uri or None, registry_uri or None)
    version, _, _ = find_version(uri, connection)
    lineage = _deployed_lineage(isvc_name, namespace, target)
    deployed = None if lineage is None else lineage.model_version
    same_model = lineage is not None and lineage.model_name == isvc_lineage.model_label(version.name)
    changed = not same_model or deployed != str(version.version)
    log.warning(
        "%s points to version %s; %s/%s serves %s → %s",
        model_uri, version.version, namespace, isvc_name, deployed or "nothing", "deploy" if changed else "no change",
    )  # fmt: skip
    return changed
