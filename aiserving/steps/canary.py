"""Steps: set, promote or roll back a canary; and the exit handler's rollback."""

from __future__ import annotations

import logging
from typing import Any

from aiserving.steps.artifacts import ArtifactLike
from aiserving.steps.deploy import check_target, service_metadata
from serving_core import isvc_lineage
from serving_core.errors import NotFoundError, UnsupportedError

log = logging.getLogger(__name__)


def _split_text(metadata: dict[str, Any]) -> str:
    shares = [f"{share['revision']} {share['percent']}%" for share in metadata["traffic"]]
    return " / ".join(shares) or "no traffic reported yet"


def canary_step(
    action: str, isvc_name: str, namespace: str, target: str, inference_service: ArtifactLike, percent: int = 0
) -> str:
    """Change the live canary and wait until the controller serves the new split.

    Raises:
        UnsupportedError: target render (there is no live object to change) or an unknown action.
    """
    from inference_services.canary import CanaryControl
    from inference_services.connection import connect

    if check_target(target) == "render":
        raise UnsupportedError(
            f"canary {action} changes a live InferenceService; target render has none",
            hint="run canary-control with target cluster",
        )
    control = CanaryControl(connect(), namespace)
    if action == "set":
        document = control.set_percent(isvc_name, percent, wait=True)
    elif action == "promote":
        document = control.promote(isvc_name, wait=True)
    elif action == "rollback":
        document = control.rollback(isvc_name, wait=True)
    else:
        raise UnsupportedError(f"canary action {action!r} is unknown", hint="use set, promote or rollback")
    inference_service.metadata.update(service_metadata(document, target, percent))
    return _split_text(inference_service.metadata)


def rollback_on_failure_step(
    isvc_name: str, namespace: str, target: str, pipeline_run: str, state: str, error_message: str
) -> str:
    """Stop the canary this run started when the run did not succeed; say what was done.

    Only a canary still in progress and stamped with this run's ID is touched: a failure before
    the deploy step, or a canary another run or a person started, is left alone.
    """
    from aiserving.steps.rollout import rollout_exit_step
    from inference_services.canary import CanaryControl
    from inference_services.connection import connect
    from inference_services.isvc_api import InferenceServiceApi
    from inference_services.traffic import canary_in_progress

    if state == "SUCCEEDED":
        return "nothing: the run succeeded"
    log.warning("the run ended %s (%s); checking %s/%s", state, error_message, namespace, isvc_name)
    if check_target(target) == "render":
        return "nothing to roll back: target render changes no live object"
    clients = connect()
    live = InferenceServiceApi(clients, namespace).find(isvc_name)
    if live is None:
        return "nothing to roll back: the InferenceService does not exist"
    # A progressive rollout this run started (rollout_strategy progressive) is rolled back through its
    # state machine, so its state on the InferenceService says so too.
    said = rollout_exit_step(isvc_name, namespace, target, pipeline_run, state, error_message, clients=clients)
    if said.startswith("rolled back"):
        return said
    if isvc_lineage.read(live).pipeline_run != pipeline_run:
        return "nothing to roll back: this run did not change the InferenceService"
    if not canary_in_progress(live):
        return "nothing to roll back: no canary in progress"
    try:
        CanaryControl(clients, namespace).rollback(isvc_name, wait=True)
    except NotFoundError as error:
        return f"nothing to roll back: {error.message}"
    return f"rolled back {namespace}/{isvc_name}: the previous revision serves 100%"
