"""Field and label selectors, parsed and checked as kube-apiserver does for list and watch."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.kube_api.errors import bad_request
from tests.support.kube_api.resources import ResourceType

_TERMS = re.compile(r"(?:[^,(]|\([^)]*\))+")
_SET_TERM = re.compile(r"^(?P<key>[^\s!=]+)\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)$")
_EQUALITY = re.compile(r"^(?P<key>[^\s!=]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s,]*)$")


@dataclass(frozen=True)
class Selector:
    """Field and label requirements; an object matches when it passes all of them."""

    fields: tuple[tuple[str, str, str], ...] = ()
    labels: tuple[Callable[[dict[str, str]], bool], ...] = ()

    def matches(self, document: dict[str, Any]) -> bool:
        for field, operator, expected in self.fields:
            value: Any = document
            for part in field.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
            if (text == expected) != (operator == "="):
                return False
        labels = document.get("metadata", {}).get("labels") or {}
        return all(requirement(labels) for requirement in self.labels)


def parse(kind: ResourceType, field_selector: str | None, label_selector: str | None) -> Selector:
    """The selector of a list or watch request.

    Raises:
        ApiStatusError: 400 for a field label the kind does not register (custom resources register only
            ``metadata.name`` and ``metadata.namespace``) or a selector that does not parse.
    """
    fields = []
    for term in (field_selector or "").split(","):
        if not term.strip():
            continue
        found = _EQUALITY.match(term.strip())
        if found is None:
            raise bad_request(f"invalid selector: '{field_selector}'; can't understand '{term}'")
        if found["key"] not in kind.selectable_fields:
            raise bad_request(f"field label not supported: {found['key']}")
        fields.append((found["key"], "!=" if found["op"] == "!=" else "=", found["value"]))
    labels = [_label_requirement(term.strip()) for term in _TERMS.findall(label_selector or "") if term.strip()]
    return Selector(tuple(fields), tuple(labels))


def _label_requirement(term: str) -> Callable[[dict[str, str]], bool]:
    if found := _SET_TERM.match(term):
        key, values = found["key"], {value.strip() for value in found["values"].split(",")}
        if found["op"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if found := _EQUALITY.match(term):
        key, value = found["key"], found["value"]
        if found["op"] == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if term.startswith("!"):
        return lambda labels: term[1:] not in labels
    if re.fullmatch(r"[A-Za-z0-9./_-]+", term):
        return lambda labels: term in labels
    raise bad_request(f"unable to parse requirement: found '{term}', expected: in, notin, =, ==, !=, gt, lt")


NOTHING = Selector()
