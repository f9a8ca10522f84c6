import pytest

from aiserving.pipeline_ops.params import parse_params
from aiserving.pipeline_ops.triggers import normalize_cron
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
