"""Turn ``--param key=value`` pairs into typed pipeline arguments."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from serving_core.errors import InvalidInputError

_BOOLEANS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def _convert(key: str, raw: str, parameter_type: str) -> Any:
    try:
        if parameter_type == "NUMBER_INTEGER":
            return int(raw)
        if parameter_type == "NUMBER_DOUBLE":
            return float(raw)
        if parameter_type == "BOOLEAN":
            return _BOOLEANS[raw.strip().lower()]
        if parameter_type in ("LIST", "STRUCT"):
            value = json.loads(raw)
            expected = list if parameter_type == "LIST" else dict
            if not isinstance(value, expected):
                raise TypeError(f"expected a JSON {expected.__name__}")
            return value
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidInputError(
            f"parameter {key}={raw!r} is not a valid {parameter_type}",
            hint="BOOLEAN takes true/false; LIST and STRUCT take JSON, e.g. key='[1, 2]' or key='{\"a\": 1}'",
        ) from error
    return raw


def parse_params(pairs: Sequence[str], inputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Parse ``key=value`` pairs, typed by the pipeline's input definitions.

    Raises:
        InvalidInputError: a pair has no ``=``, names no input, or has the wrong type.
    """
    arguments: dict[str, Any] = {}
    for pair in pairs:
        key, separator, raw = pair.partition("=")
        if not separator or not key:
            raise InvalidInputError(f"parameter {pair!r} is not key=value", hint="write --param canary_percent=10")
        if key not in inputs:
            raise InvalidInputError(
                f"the pipeline has no parameter {key!r}", hint=f"its parameters: {', '.join(sorted(inputs))}"
            )
        arguments[key] = _convert(key, raw, str(inputs[key].get("parameterType", "STRING")))
    return arguments
