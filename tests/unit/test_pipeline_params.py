import dataclasses
import inspect
import typing
from collections.abc import Callable
from typing import Any

import pytest

from aiserving.pipeline_ops.params import parse_params
from aiserving.pipeline_ops.triggers import normalize_cron
from aiserving.steps.deploy import DeployParameters
from components.deploy_inference_service import deploy_inference_service
from pipelines.chain import CHAIN_DEFAULTS, ROLLOUT_INPUTS, ChainParameters
from pipelines.deploy_fleet import FLEET_EXAMPLE, deploy_fleet
from pipelines.deploy_model import deploy_model
from pipelines.deploy_on_alias_change import deploy_on_alias_change
from serving_core.errors import InvalidInputError

INPUTS = {
    "name": {"parameterType": "STRING"},
    "percent": {"parameterType": "NUMBER_INTEGER"},
    "ratio": {"parameterType": "NUMBER_DOUBLE"},
    "insecure": {"parameterType": "BOOLEAN"},
    "models": {"parameterType": "LIST"},
    "overrides": {"parameterType": "STRUCT"},
}


def test_params_are_typed_by_the_pipeline_inputs() -> None:
    pairs = ["name=a=b", "percent=10", "ratio=0.5", "insecure=true", "models=[1]", 'overrides={"x": 1}']
    assert parse_params(pairs, INPUTS) == {
        "name": "a=b",
        "percent": 10,
        "ratio": 0.5,
        "insecure": True,
        "models": [1],
        "overrides": {"x": 1},
    }


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("percent=ten", "parameter percent='ten' is not a valid NUMBER_INTEGER"),
        ("insecure=maybe", "is not a valid BOOLEAN"),
        ("models={}", "is not a valid LIST"),
        ("nope=1", "the pipeline has no parameter 'nope'"),
        ("percent", "is not key=value"),
    ],
)
def test_bad_params_name_the_value(pair: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_params([pair], INPUTS)


@pytest.mark.parametrize(
    ("cron", "expected"),
    [("0 3 * * *", "0 0 3 * * *"), ("30 0 3 * * 1-5", "30 0 3 * * 1-5"), ("*/15 * * * *", "0 */15 * * * *")],
)
def test_cron_is_normalized_to_kfp_six_fields(cron: str, expected: str) -> None:
    assert normalize_cron(cron) == expected


@pytest.mark.parametrize("cron", ["* * *", "0 3 * * * * *", "0 3 * * $"])
def test_bad_cron_is_refused(cron: str) -> None:
    with pytest.raises(InvalidInputError, match="is not valid"):
        normalize_cron(cron)


def _signature(func: Callable[..., Any]) -> dict[str, tuple[Any, Any]]:
    """Name → (type, default) of a function's parameters."""
    hints = typing.get_type_hints(func)
    return {name: (hints[name], parameter.default) for name, parameter in inspect.signature(func).parameters.items()}


def _definition(cls: type, defaults: object | None = None) -> dict[str, tuple[Any, Any]]:
    """Name → (type, default) of a parameters dataclass, defaults taken from an instance of it."""
    hints = typing.get_type_hints(cls)
    empty = inspect.Parameter.empty
    return {
        field.name: (hints[field.name], empty if defaults is None else getattr(defaults, field.name))
        for field in dataclasses.fields(cls)
    }


@pytest.mark.parametrize("pipeline", [deploy_model, deploy_on_alias_change], ids=lambda pipeline: pipeline.name)
def test_deploy_pipeline_signatures_match_the_chain_parameters(pipeline: Any) -> None:
    # KFP reads inputs from each pipeline's own signature; this keeps them equal to the one definition.
    assert _signature(pipeline.pipeline_func) == _definition(ChainParameters, CHAIN_DEFAULTS)


def test_fleet_signature_matches_the_chain_parameters_it_shares() -> None:
    signature = _signature(deploy_fleet.pipeline_func)
    definition = _definition(ChainParameters, CHAIN_DEFAULTS)
    shared = {name: value for name, value in signature.items() if name != "models"}
    assert shared == {name: definition[name] for name in shared}
    # Every other chain parameter comes from each model's item, or is fixed; a fleet has no progressive rollout.
    assert set(definition) - set(shared) == set(FLEET_EXAMPLE[0]) | {"package_name", *ROLLOUT_INPUTS}


def test_deploy_component_signature_matches_the_step_parameters() -> None:
    artifacts = {"package", "inference_service", "manifest"}
    signature = _signature(deploy_inference_service.python_func)
    assert {name: value for name, value in signature.items() if name not in artifacts} == _definition(DeployParameters)


def test_the_step_takes_chain_parameters_with_their_chain_types() -> None:
    chain, step = typing.get_type_hints(ChainParameters), typing.get_type_hints(DeployParameters)
    shared = step.keys() & chain.keys()
    assert {name: chain[name] for name in shared} == {name: step[name] for name in shared}
