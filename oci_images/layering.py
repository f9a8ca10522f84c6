"""The layer plan: which part of a scanned package goes into which image layer.

``per-file`` (the default) gives every file at or above a size threshold a layer of its own
and puts the rest (small files, directories, symlinks) in one shared layer; ``single`` keeps
the whole package in one layer. A file's layer holds only that file and its parent
directories (fixed metadata), so its bytes depend on nothing but the file's path, mode and
content: the same weight shard in two versions, or in two models, is the same blob, and a
registry or containerd stores and pulls it once.

Order: file layers sorted by path, then the shared layer. containerd unpacks a layer on top of
the ones below it, so the layers that change least (large weight files) go first and the one
that changes most often (configs, tokenizers, ``lineage.json``) goes last.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from oci_images.layer import LayerEntry, LayerPlan
from serving_core.errors import InvalidInputError

LayerMode = Literal["per-file", "single"]
LAYER_MODES: tuple[LayerMode, ...] = ("per-file", "single")
LayerKind = Literal["file", "small-files", "package"]
LAYERS_ENV = "AISERVING_IMAGE_LAYERS"
THRESHOLD_ENV = "AISERVING_LAYER_THRESHOLD"
DEFAULT_THRESHOLD = 32 << 20
# Docker and containerd refuse images much deeper than about 125 layers (overlayfs mount limits);
# beyond this many large files the smallest of them share the last layer instead.
MAX_FILE_LAYERS = 100
ANNOTATION_KIND = "ai.creativeflow.layer.kind"
ANNOTATION_FILE = "ai.creativeflow.layer.file"
ANNOTATION_FILE_COUNT = "ai.creativeflow.layer.file-count"
_SIZE = re.compile(r"^(\d+)\s*([KMG]i?B?|B)?$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
_SIZE_HINT = "give bytes or a size with a unit, e.g. 32M, 512K, 1G (powers of 1024)"


@dataclass(frozen=True)
class PlannedLayer:
    """One layer of the plan: its tar content and what it holds, for people and for the image."""

    content: LayerPlan
    kind: LayerKind

    @property
    def files(self) -> tuple[LayerEntry, ...]:
        """The regular files in this layer."""
        return tuple(entry for entry in self.content.entries if entry.kind == "file")

    @property
    def file_bytes(self) -> int:
        """Total size of the regular files in this layer."""
        return self.content.file_bytes

    @property
    def description(self) -> str:
        """``/models/a/shard-1.bin``, or ``7 files under 32 MiB, directories, symlinks``."""
        if self.kind == "file":
            return "/" + self.files[0].member_name
        count = len(self.files)
        noun = "file" if count == 1 else "files"
        return f"{count} {noun}" + (" (the whole package)" if self.kind == "package" else ", directories, symlinks")

    def annotations(self) -> dict[str, str]:
        """The manifest annotations of this layer's descriptor: what it holds."""
        annotations = {ANNOTATION_KIND: self.kind, ANNOTATION_FILE_COUNT: str(len(self.files))}
        if self.kind == "file":
            annotations[ANNOTATION_FILE] = "/" + self.files[0].member_name
        return annotations


def check_layer_mode(mode: str) -> LayerMode:
    """Validate a layer mode name.

    Raises:
        InvalidInputError: not one of :data:`LAYER_MODES`.
    """
    if mode == "per-file":
        return "per-file"
    if mode == "single":
        return "single"
    raise InvalidInputError(f"layer mode {mode!r} is not supported", hint="use per-file (default) or single")


def parse_size(text: str | int, what: str = "layer threshold") -> int:
    """``32M``, ``512KiB``, ``1G`` or plain bytes → bytes (units are powers of 1024).

    Raises:
        InvalidInputError: not a non-negative size.
    """
    if isinstance(text, int):
        if text < 0:
            raise InvalidInputError(f"{what} {text} is negative", hint=_SIZE_HINT)
        return text
    match = _SIZE.match(text.strip())
    if not match:
        raise InvalidInputError(f"{what} {text!r} is not a size", hint=_SIZE_HINT)
    unit = (match.group(2) or "").upper()[:1]
    return int(match.group(1)) * _UNITS[unit]


def layer_settings(
    mode: str | None, threshold: str | int | None, environ: Mapping[str, str] | None = None
) -> tuple[LayerMode, int]:
    """The layer mode and threshold: the arguments, else the environment, else the defaults.

    ``$AISERVING_IMAGE_LAYERS`` and ``$AISERVING_LAYER_THRESHOLD`` let a pipeline step change them
    without a new parameter; the defaults are ``per-file`` and :data:`DEFAULT_THRESHOLD`.

    Raises:
        InvalidInputError: a bad mode or size, naming where it came from.
    """
    environ = os.environ if environ is None else environ
    chosen_mode = mode if mode is not None else environ.get(LAYERS_ENV) or "per-file"
    chosen_threshold = threshold if threshold is not None else environ.get(THRESHOLD_ENV) or DEFAULT_THRESHOLD
    threshold_source = "layer threshold" if threshold is not None else f"${THRESHOLD_ENV}"
    return check_layer_mode(chosen_mode), parse_size(chosen_threshold, threshold_source)


def plan_layers(
    tree: LayerPlan, mode: LayerMode = "per-file", threshold: int = DEFAULT_THRESHOLD
) -> list[PlannedLayer]:
    """Split a scanned tree into layers.

    Args:
        tree: the whole package as scanned by :func:`oci_images.layer.scan_tree`.
        mode: ``per-file`` or ``single``.
        threshold: files of at least this many bytes get a layer each (``per-file`` only).

    Returns:
        The layers in image order: file layers by path, then the shared layer (left out when it
        would hold nothing).
    """
    if mode == "single":
        return [PlannedLayer(tree, "package")]
    large = [entry for entry in tree.entries if entry.kind == "file" and entry.size >= max(threshold, 1)]
    if len(large) > MAX_FILE_LAYERS:
        large = sorted(large, key=lambda entry: (-entry.size, entry.member_name))[:MAX_FILE_LAYERS]
    large.sort(key=lambda entry: entry.member_name)
    directories = {entry.member_name: entry for entry in tree.entries if entry.kind == "dir"}
    layers = [
        PlannedLayer(LayerPlan(tree.root, tree.prefix, (*_parents(entry, directories), entry)), "file")
        for entry in large
    ]
    own_layer = {entry.member_name for entry in large}
    covered = own_layer | {parent.member_name for layer in layers for parent in layer.content.entries}
    rest = tuple(entry for entry in tree.entries if entry.member_name not in own_layer)
    # Left out only when every entry already arrives with a file layer (parents included).
    if any(entry.member_name not in covered for entry in rest) or not layers:
        kind: LayerKind = "small-files" if layers else "package"
        layers.append(PlannedLayer(LayerPlan(tree.root, tree.prefix, rest), kind))
    return layers


def _parents(entry: LayerEntry, directories: dict[str, LayerEntry]) -> list[LayerEntry]:
    """The directory entries above ``entry``, outermost first, so each file layer stands alone."""
    parts = entry.member_name.split("/")[:-1]
    names = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    return [directories[name] for name in names if name in directories]
