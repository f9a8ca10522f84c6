import pytest

from mlflow_source import ModelUri
from serving_core.errors import InvalidInputError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models:/fraud/3", ModelUri(name="fraud", version="3")),
        ("models:/fraud@champion", ModelUri(name="fraud", alias="champion")),
        ("models:/fraud/latest", ModelUri(name="fraud")),
        ("  models:/team.fraud-v2@canary ", ModelUri(name="team.fraud-v2", alias="canary")),
    ],
)
def test_parses_accepted_forms(text: str, expected: ModelUri) -> None:
    assert ModelUri.parse(text) == expected


@pytest.mark.parametrize("text", ["fraud/3", "models:/fraud", "models:/fraud/0", "models:/fraud/v3", "runs:/abc/model"])
def test_malformed_uri_names_the_value_and_the_forms(text: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        ModelUri.parse(text)
    assert repr(text) in str(caught.value)
    assert "models:/NAME/VERSION, models:/NAME@ALIAS or models:/NAME/latest" in str(caught.value)


def test_round_trips_to_canonical_text() -> None:
    assert str(ModelUri.parse("models:/fraud/latest")) == "models:/fraud/latest"
    assert str(ModelUri.parse("models:/fraud@champion")) == "models:/fraud@champion"
    assert str(ModelUri.parse("models:/fraud/12")) == "models:/fraud/12"
