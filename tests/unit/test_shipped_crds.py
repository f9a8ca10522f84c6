"""The KServe CRDs shipped as package data are unchanged copies of the reference ones, with provenance."""

from __future__ import annotations

import hashlib
from importlib.resources import files
from pathlib import Path

import pytest

from inference_services import crd_validation
from inference_services.crd_validation import CRD_DIR_ENV, ISVC_CRD_FILE, available_crd_versions, crd_version_for
from inference_services.versions import NEWEST_SUPPORTED, OLDEST_SUPPORTED, KServeVersion
from tests.support.tools import skip_or_fail

SHIPPED = files("inference_services") / "crds"
REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "kserve-crds"


def shipped_files() -> dict[str, bytes]:
    """``v<tag>/<file>`` → content, for every YAML file under the shipped folder."""
    return {
        f"{folder.name}/{item.name}": item.read_bytes()
        for folder in SHIPPED.iterdir()
        if folder.is_dir() and folder.name.startswith("v")
        for item in folder.iterdir()
        if item.name.endswith(".yaml")
    }


def reference_sums() -> dict[str, str]:
    sums = REFERENCE / "SHA256SUMS"
    if not sums.is_file():
        skip_or_fail(f"no {sums}: the reference KServe CRDs sit in ../shared/kserve-crds beside the checkout")
    pairs = (line.split(maxsplit=1) for line in sums.read_text(encoding="utf-8").splitlines() if line.strip())
    return {name.strip().removeprefix("*"): digest for digest, name in pairs}


def test_every_shipped_crd_matches_the_reference_checksum() -> None:
    shipped = shipped_files()
    assert shipped, f"no CRDs shipped under {SHIPPED}"
    sums = reference_sums()
    for name, content in shipped.items():
        assert name in sums, f"{name} is not one of the reference CRDs in {REFERENCE}"
        assert hashlib.sha256(content).hexdigest() == sums[name], f"{name} differs from {REFERENCE / name}"


def test_provenance_lists_each_file_with_its_checksum_and_the_license_ships() -> None:
    provenance = (SHIPPED / "PROVENANCE.md").read_text(encoding="utf-8")
    for name, content in shipped_files().items():
        assert f"| {name} | tag {name.split('/')[0]} |" in provenance
        assert hashlib.sha256(content).hexdigest() in provenance
    assert "Apache License" in (SHIPPED / "LICENSE").read_text(encoding="utf-8")


def test_the_shipped_tags_cover_the_supported_range_and_no_more(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CRD_DIR_ENV, raising=False)
    assert crd_validation.crd_directory() == SHIPPED
    oldest, newest = KServeVersion.parse(OLDEST_SUPPORTED), KServeVersion.parse(NEWEST_SUPPORTED)
    shipped = available_crd_versions()
    assert crd_version_for(oldest) == shipped[0] == oldest
    # Each shipped tag is the one some supported minor release validates against.
    used = {crd_version_for(KServeVersion(0, minor)) for minor in range(oldest.parts[1], newest.parts[1] + 1)}
    assert used == set(shipped)
    assert {name.split("/")[1] for name in shipped_files()} == {ISVC_CRD_FILE}


def test_kserve_crd_dir_overrides_the_shipped_copies(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "v0.15.0").mkdir()
    (tmp_path / "v0.15.0" / ISVC_CRD_FILE).write_bytes((SHIPPED / "v0.14.0" / ISVC_CRD_FILE).read_bytes())
    monkeypatch.setenv(CRD_DIR_ENV, str(tmp_path))
    assert available_crd_versions() == [KServeVersion(0, 15)]
