"""``aiserving build-image``: a package directory → a modelcar or predictor image, digest-pinned."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from oci_images.build import IMAGE_FORMATS, BuildResult, build_image
from oci_images.digests import COMPRESSIONS
from oci_images.layering import DEFAULT_THRESHOLD, LAYER_MODES, LAYERS_ENV, THRESHOLD_ENV
from oci_images.registry import DEFAULT_TIMEOUT_S

_MIB = 1 << 20


def _build(args: argparse.Namespace) -> int:
    result = build_image(
        Path(args.package_dir),
        args.image,
        image_format=args.format,
        base_image=args.base_image,
        platform=args.platform,
        insecure=args.insecure,
        compression=args.compression,
        registry_config=Path(args.registry_config) if args.registry_config else None,
        ca_file=Path(args.ca_file) if args.ca_file else None,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        show_progress=False if args.no_progress else None,
        timeout_s=args.timeout,
        layers=args.layers,
        layer_threshold=args.layer_threshold,
        mount_from=tuple(args.mount_from),
        dry_run=args.dry_run,
    )
    if args.json:
        print(json.dumps(_document(result), indent=2))
    elif args.dry_run:
        print(_plan_table(result))
    else:
        print(result.pinned)
    return 0


def _document(result: BuildResult) -> dict[str, Any]:
    return {
        "image": result.pinned,
        "reference": result.reference,
        "digest": result.digest,
        "config_digest": result.config_digest,
        "dry_run": result.dry_run,
        "bytes_sent": result.bytes_sent,
        "bytes_skipped": result.bytes_skipped,
        "reused": result.reused,
        "layers": [
            {
                "kind": item.planned.kind,
                "holds": item.planned.description,
                "files": [f"/{entry.member_name}" for entry in item.planned.files],
                "digest": item.layer.digest,
                "diff_id": item.layer.diff_id,
                "size": item.layer.size,
                "media_type": item.layer.media_type,
                "outcome": item.outcome,
                "source": item.source,
            }
            for item in result.layers
        ],
        "base": result.base,
        "base_digest": result.base_digest,
        "base_layers": [
            {"digest": layer.digest, "size": layer.size, "outcome": layer.outcome} for layer in result.base_layers
        ],
    }


def _plan_table(result: BuildResult) -> str:
    """The layer plan of a dry run, one row per layer, and what the push would send."""
    rows = [("layer", "size MiB", "digest", "would be", "holds")]
    for number, item in enumerate(result.layers, start=1):
        outcome = f"{item.outcome} from {item.source}" if item.source else item.outcome
        rows.append(
            (str(number), f"{item.layer.size / _MIB:.1f}", item.layer.digest[:19], outcome, item.planned.description)
        )
    for layer in result.base_layers:
        rows.append(("base", f"{layer.size / _MIB:.1f}", layer.digest[:19], layer.outcome, result.base))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    ]
    total = result.bytes_sent + result.bytes_skipped
    skipped_layers = sum(1 for item in result.layers if item.skipped)
    lines += [
        "",
        f"would send {result.bytes_sent / _MIB:.1f} MiB of {total / _MIB:.1f} MiB in model layers "
        f"({skipped_layers} of {len(result.layers)} layers already there or mountable)",
        f"image: {result.pinned}",
    ]
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``build-image`` to the CLI."""
    parser = subparsers.add_parser(
        "build-image",
        help="build a modelcar or predictor image from a package directory and push it (no Docker daemon)",
        description=(
            "Appends PACKAGE_DIR under /models to a base image, one deterministic layer per large file plus one "
            "for the rest, and pushes only the layers the registry does not have; prints REGISTRY/REPO@sha256:... "
            "Registry credentials come from --registry-config, REGISTRY_AUTH_FILE, DOCKER_CONFIG or "
            "~/.docker/config.json, or AISERVING_REGISTRY_USERNAME/PASSWORD."
        ),
    )
    parser.add_argument("package_dir", metavar="PACKAGE_DIR")
    parser.add_argument(
        "--image",
        help="REGISTRY/REPO:TAG or oci-layout:PATH[:TAG] (default: $AISERVING_REGISTRY/NAME:vVERSION, "
        "else oci-layout:PACKAGE_DIR.oci:vVERSION)",
    )
    parser.add_argument("--format", choices=IMAGE_FORMATS, default="modelcar", help="default: modelcar")
    parser.add_argument(
        "--base-image", help="image to append to (modelcar: busybox; predictor: our model server; 'scratch': none)"
    )
    parser.add_argument("--platform", default="linux/amd64", help="OS/ARCH[/VARIANT] chosen from a base index")
    parser.add_argument("--insecure", action="store_true", help="talk plain http to registries")
    parser.add_argument("--compression", choices=COMPRESSIONS, default="none", help="model layer compression")
    parser.add_argument(
        "--layers",
        choices=LAYER_MODES,
        help=f"per-file: a layer per file of at least --layer-threshold, the rest in one; single: one layer "
        f"(default: ${LAYERS_ENV}, else per-file)",
    )
    parser.add_argument(
        "--layer-threshold",
        metavar="SIZE",
        help=f"files of at least SIZE (bytes, or 512K, 64M, 1G) get their own layer "
        f"(default: ${THRESHOLD_ENV}, else {DEFAULT_THRESHOLD >> 20}M)",
    )
    parser.add_argument(
        "--mount-from",
        action="append",
        default=[],
        metavar="REPO",
        help="a repository on the target registry whose layers may be shared (mounted, not uploaded); repeatable",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the layer plan and what would be sent (hashes the files, HEADs the registry, writes nothing)",
    )
    parser.add_argument(
        "--registry-config",
        default=os.environ.get("AISERVING_REGISTRY_CONFIG"),
        help="docker config.json, or a directory with a mounted dockerconfigjson secret",
    )
    parser.add_argument("--ca-file", help="PEM CA bundle that signed the registry's TLS certificate")
    parser.add_argument("--cache-dir", help="layer digest cache directory (default: ~/.cache/aiserving)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per registry response")
    parser.add_argument("--no-progress", action="store_true", help="never draw the progress bar")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=_build)
