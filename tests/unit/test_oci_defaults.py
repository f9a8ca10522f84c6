"""Where an image goes without --image, and input checks that happen before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from oci_images.build import build_image, default_image
from serving_core.errors import InvalidInputError
from tests.support.oci import make_package


def test_default_image_is_a_layout_without_a_registry(tmp_path: Path) -> None:
    package = make_package(tmp_path / "pkg")
    assert default_image(package, {}) == f"oci-layout:{package}.oci:v7"
    assert default_image(package, {"AISERVING_REGISTRY": "registry.example.com/ml/"}) == (
        "registry.example.com/ml/fraud-detector:v7"
    )
    bare = tmp_path / "Bare_Model"
    bare.mkdir()
    assert default_image(bare, {"AISERVING_REGISTRY": "r.example.com"}) == "r.example.com/bare-model:latest"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_format": "docker"}, "image format 'docker' is not supported"),
        ({"compression": "zstd"}, "compression 'zstd' is not supported"),
        ({"platform": "amd64"}, "platform 'amd64' is not OS/ARCH"),
        ({"image": "r.example.com/m@sha256:" + "a" * 64}, "names a digest"),
        ({"base_image": "r.example.com/Bad:tag"}, "invalid repository"),
        ({"ca_file": "/no/such/ca.pem"}, "CA file /no/such/ca.pem does not exist"),
        ({"layers": "per-shard"}, "layer mode 'per-shard' is not supported"),
        ({"layer_threshold": "big"}, "layer threshold 'big' is not a size"),
        ({"mount_from": ("models/base",)}, "--mount-from models/base needs a registry target"),
        (
            {"image": "r.example.com/m:v1", "mount_from": ("r.example.com/models/base",)},
            "--mount-from r.example.com/models/base names the registry",
        ),
        ({"image": "r.example.com/m:v1", "mount_from": ("Models/Base",)}, "invalid repository"),
    ],
)
def test_bad_arguments_fail_before_any_write(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    package = make_package(tmp_path / "pkg")
    arguments: dict[str, object] = {"image": f"oci-layout:{tmp_path / 'out'}", **kwargs}
    if "ca_file" in arguments:
        arguments["ca_file"] = Path(str(arguments["ca_file"]))
    with pytest.raises(InvalidInputError, match=message):
        build_image(package, **arguments)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def test_predictor_needs_its_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AISERVING_MODEL_SERVER_IMAGE", raising=False)
    with pytest.raises(InvalidInputError, match="pass --base-image REF"):
        build_image(make_package(tmp_path / "pkg"), f"oci-layout:{tmp_path / 'out'}", image_format="predictor")


def test_embedded_default_writes_a_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AISERVING_REGISTRY", raising=False)
    monkeypatch.setenv("AISERVING_CACHE_DIR", str(tmp_path / "cache"))
    package = make_package(tmp_path / "pkg")
    result = build_image(package, base_image="scratch")
    assert result.pinned == f"oci-layout:{package}.oci@{result.digest}"
    assert (Path(f"{package}.oci") / "index.json").is_file()
