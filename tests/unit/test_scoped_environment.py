"""``scoped_environment``: what the KFP local runner's subprocesses see, and nothing left behind after."""

from __future__ import annotations

import os

import pytest

from aiserving.pipeline_ops.local_run import scoped_environment


@pytest.fixture(autouse=True)
def one_key_set_one_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPED_ENV_SET", "before")
    monkeypatch.delenv("SCOPED_ENV_UNSET", raising=False)


def test_sets_values_inside_and_restores_or_removes_them_after() -> None:
    before = dict(os.environ)
    with scoped_environment({"SCOPED_ENV_SET": "during", "SCOPED_ENV_UNSET": "new"}):
        assert dict(os.environ) == {**before, "SCOPED_ENV_SET": "during", "SCOPED_ENV_UNSET": "new"}
    assert dict(os.environ) == before


def test_restores_the_environment_when_the_block_raises() -> None:
    before = dict(os.environ)
    with (
        pytest.raises(KeyError, match="boom"),
        scoped_environment({"SCOPED_ENV_SET": "during", "SCOPED_ENV_UNSET": "new"}),
    ):
        raise KeyError("boom")
    assert dict(os.environ) == before


def test_restores_the_value_seen_on_entry_not_one_set_inside() -> None:
    before = dict(os.environ)
    with scoped_environment({"SCOPED_ENV_SET": "during"}):
        os.environ["SCOPED_ENV_UNSET"] = "set inside, not scoped"
    assert dict(os.environ) == {**before, "SCOPED_ENV_UNSET": "set inside, not scoped"}
