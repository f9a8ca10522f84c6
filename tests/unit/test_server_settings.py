"""The serving command line: both entry points parse the same flags into the same settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiserving.cli.main import build_parser as build_cli_parser
from model_wrappers.__main__ import build_parser
from model_wrappers.settings import ServerSettings, settings_from_args
from serving_core.errors import InvalidInputError


def test_python_m_contract() -> None:
    args = build_parser().parse_args(
        ["--model-dir", "/pkg", "--model-name", "fraud", "--http-port", "9001", "--grpc-port", "9002"]
    )
    assert settings_from_args(args) == ServerSettings(
        model_dir=Path("/pkg"), model_name="fraud", http_port=9001, grpc_port=9002
    )


def test_aiserving_serve_contract() -> None:
    args = build_cli_parser().parse_args(
        [
            "serve",
            "/pkg",
            "--port",
            "9001",
            "--max-batch-size",
            "16",
            "--max-latency-ms",
            "2.5",
            "--latency-buckets",
            "1,0.1",
        ]
    )
    assert settings_from_args(args) == ServerSettings(
        model_dir=Path("/pkg"), http_port=9001, max_batch_size=16, max_latency_ms=2.5, latency_buckets=(0.1, 1.0)
    )


def test_defaults_serve_mnt_models_on_8080_without_grpc() -> None:
    assert settings_from_args(build_parser().parse_args([])) == ServerSettings()
    assert ServerSettings().model_dir == Path("/mnt/models")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["/a", "--model-dir", "/b"], "two model directories given: /a and --model-dir /b"),
        (["--max-batch-size", "0"], "--max-batch-size 0 must be at least 1"),
        (["--max-latency-ms", "-1"], "--max-latency-ms -1 must not be negative"),
        (["--port", "70000"], "--port 70000 is not a TCP port"),
    ],
)
def test_bad_flags_name_the_value(argv: list[str], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        settings_from_args(build_parser().parse_args(argv))


def test_port_zero_binds_ephemeral_ports_and_reports_them_in_a_port_file(tmp_path: Path) -> None:
    port_file = tmp_path / "ports.json"
    args = build_parser().parse_args(["--port", "0", "--grpc-port", "0", "--port-file", str(port_file)])
    assert settings_from_args(args) == ServerSettings(http_port=0, grpc_port=0, port_file=port_file)
    serve_args = build_cli_parser().parse_args(["serve", "/pkg", "--port", "0", "--port-file", str(port_file)])
    assert settings_from_args(serve_args).port_file == port_file


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--grpc-port", "-1"], r"--grpc-port -1 is not a TCP port \(1-65535, or 0 for a free one\)"),
        (["--port-file", "/no/such/dir/ports.json"], "--port-file /no/such/dir/ports.json: directory /no/such/dir"),
    ],
)
def test_bad_port_flags_name_the_value(argv: list[str], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        settings_from_args(build_parser().parse_args(argv))
