"""Where ``make demo`` puts the image on a machine without Debian's docker-registry: said once, with the fix."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from aiserving.demo import image_target
from aiserving.pipeline_ops.run_console import RunConsole


def test_without_docker_registry_the_demo_says_once_it_writes_an_oci_layout_and_how_to_get_a_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # a fresh machine: neither docker-registry nor busybox
    terminal = io.StringIO()
    with RunConsole(tmp_path / "demo.log", terminal=terminal) as console, contextlib.ExitStack() as stack:
        image, base, insecure = image_target(stack, tmp_path / "state", console)
    layout = tmp_path / "state" / "images" / "demo-iris-classifier"
    assert (image, base, insecure) == (f"oci-layout:{layout}:demo", "scratch", False)
    [line] = terminal.getvalue().splitlines()
    assert "docker-registry is not installed, so the image goes to an OCI layout" in line
    assert "sudo apt-get install docker-registry busybox-static, then rerun" in line
