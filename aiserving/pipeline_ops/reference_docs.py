"""The parameter reference in docs/pipelines.md, generated from the compiled YAML."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from aiserving.pipeline_ops.catalog import COMPILED_DIR, pipelines

BEGIN = "<!-- BEGIN GENERATED PARAMETER REFERENCE: aiserving compile --docs -->"
END = "<!-- END GENERATED PARAMETER REFERENCE -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def parameter_reference(compiled_dir: Path = COMPILED_DIR) -> str:
    """A Markdown section per pipeline: its description and a table of its parameters."""
    sections = []
    for name in pipelines():
        spec = next(yaml.safe_load_all((compiled_dir / f"{name}.yaml").read_text(encoding="utf-8")))
        rows = ["| parameter | type | default | description |", "|---|---|---|---|"]
        for key, definition in sorted(spec["root"]["inputDefinitions"]["parameters"].items()):
            default = json.dumps(definition["defaultValue"]) if "defaultValue" in definition else "(required)"
            rows.append(
                f"| `{key}` | {definition['parameterType']} | `{_cell(default)}` | "
                f"{_cell(definition.get('description', ''))} |"
            )
        description = spec["pipelineInfo"].get("description", "")
        sections.append(f"### `{name}`\n\n{description}\n\n" + "\n".join(rows))
    return "\n\n".join(sections)


def update_docs(path: Path) -> None:
    """Replace the generated section of ``path`` with the current reference."""
    text = path.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{BEGIN}\n\n{parameter_reference()}\n\n{END}{tail}", encoding="utf-8")
