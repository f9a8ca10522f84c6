import hashlib
from pathlib import Path

import pytest

from mlflow_source.connection import redact_uri
from mlflow_source.download import check_artifact_path
from mlflow_source.lineage import content_digest
from serving_core.errors import InvalidInputError
from serving_core.output_dirs import check_output_dir


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def test_digest_is_defined_over_sorted_paths_sizes_and_contents(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"b/x.bin": b"xyz", "MLmodel": b"flavors: {}\n"})
    expected = hashlib.sha256(b"MLmodel\x0012\x00flavors: {}\nb/x.bin\x003\x00xyz").hexdigest()
    assert content_digest(root) == f"sha256:{expected}"


def test_digest_ignores_lineage_file_but_sees_renames_and_edits(tmp_path: Path) -> None:
    root = _tree(tmp_path / "a", {"model.pkl": b"weights", "MLmodel": b"m"})
    before = content_digest(root)
    (root / "lineage.json").write_text("{}")
    assert content_digest(root) == before
    (root / "model.pkl").rename(root / "model2.pkl")
    renamed = content_digest(root)
    assert renamed != before
    (root / "model2.pkl").write_bytes(b"weightz")
    assert content_digest(root) not in (before, renamed)


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/etc/passwd", "absolute"), ("model/../../x", "'..'"), ("..", "'..'"), ("C:\\x", "absolute"), ("", "absolute")],
)
def test_unsafe_artifact_paths_are_refused(path: str, reason: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        check_artifact_path(path)
    assert reason in str(caught.value)
    assert repr(path) in str(caught.value)


def test_safe_artifact_paths_pass() -> None:
    assert str(check_artifact_path("data/model.pkl")) == "data/model.pkl"


def test_output_dir_must_be_new_or_empty(tmp_path: Path) -> None:
    check_output_dir(tmp_path / "new")
    check_output_dir(tmp_path)
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="exists and is not empty"):
        check_output_dir(tmp_path)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://alice:s3cret@mlflow.example.com:8443/api?token=abc", "https://mlflow.example.com:8443/api"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("databricks", "databricks"),
        ("sqlite:///tmp/x.db", "sqlite:///tmp/x.db"),
    ],
)
def test_redact_uri_drops_credentials(uri: str, expected: str) -> None:
    assert redact_uri(uri) == expected
