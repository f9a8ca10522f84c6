"""docs/architecture.md draws the layers that the import contracts in pyproject.toml enforce: they must agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
CONTRACTS = {
    contract["id"]: contract
    for contract in tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"][
        "contracts"
    ]
}


def _table_rows(heading: str) -> list[tuple[str, str]]:
    """The (first, second) cells of the Markdown table whose header row starts with ``| heading |``."""
    lines = DOC[DOC.index(f"| {heading} |") :].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows.append((cells[0], cells[1]))
    return rows


def _names(cell: str) -> list[str]:
    return re.findall(r"`([a-z_.]+)`", cell)


def _contract_layers(contract: dict[str, Any]) -> list[list[str]]:
    return [[name.strip() for name in re.split(r"[:|]", layer)] for layer in contract["layers"]]


def _mermaid_subgraphs() -> dict[str, str]:
    block = DOC[DOC.index("```mermaid", DOC.index("## Layers")) :]
    block = block[: block.index("```", 3)]
    parts = re.split(r"^\s*subgraph (\w+)\s*$", block, flags=re.MULTILINE)
    return {name: body[: body.index("end")] for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_layer_table_matches_the_layers_contract() -> None:
    documented = [_names(packages) for _layer, packages in _table_rows("layer")]

    assert [layer for layer, _packages in _table_rows("layer")] == ["application", "domain", "core"]
    assert documented == _contract_layers(CONTRACTS["layers"])


def test_application_table_matches_the_application_contract() -> None:
    documented = [_names(cell)[0] for cell, _what in _table_rows("application layer")]

    assert documented == [layer for [layer] in _contract_layers(CONTRACTS["application"])]


def test_domain_independence_and_its_one_exception_are_documented() -> None:
    contract = CONTRACTS["domain-independence"]

    assert contract["modules"] == _contract_layers(CONTRACTS["layers"])[1]
    assert {rule.split(" -> ")[1].split(".")[0] for rule in contract["ignore_imports"]} == {"mlflow_source"}
    assert {rule.split(" -> ")[0].split(".")[0] for rule in contract["ignore_imports"]} == {"model_packaging"}
    assert "`model_packaging` → `mlflow_source`" in DOC


def test_diagram_places_every_package_in_its_layer() -> None:
    known = {name for layer in _contract_layers(CONTRACTS["layers"]) for name in layer}
    known |= {name for [name] in _contract_layers(CONTRACTS["application"])}
    placed = {
        subgraph: {token.split(".")[0] for token in re.findall(r"[a-z_]+(?:\.[a-z_]+)?", body) if token in known}
        for subgraph, body in _mermaid_subgraphs().items()
    }
    chain = [
        token
        for token in re.findall(r"[a-z_]+(?:\.[a-z_]+)?", _mermaid_subgraphs()["application"])
        if token in known and token != "aiserving"
    ]
    layers = _contract_layers(CONTRACTS["layers"])

    assert placed == dict(zip(["application", "domain", "core"], map(set, layers), strict=True))
    assert list(dict.fromkeys(chain)) == [layer for [layer] in _contract_layers(CONTRACTS["application"])]
