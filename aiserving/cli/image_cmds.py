"""``aiserving build-image``: a package directory → a modelcar or predictor image, digest-pinned."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from oci_images.build import IMAGE_FORMATS, build_image
from oci_images.digests import COMPRESSIONS
from oci_images.registry import DEFAULT_TIMEOUT_S


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
    )
    if args.json:
        document = {
            "image": result.pinned,
            "reference": result.reference,
            "digest": result.digest,
            "config_digest": result.config_digest,
            "layer_digest": result.layer.digest,
            "layer_diff_id": result.layer.diff_id,
            "layer_size": result.layer.size,
            "layer_reused": result.layer_reused,
            "base": result.base,
            "base_digest": result.base_digest,
        }
        print(json.dumps(document, indent=2))
    else:
        print(result.pinned)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``build-image`` to the CLI."""
    parser = subparsers.add_parser(
        "build-image",
        help="build a modelcar or predictor image from a package directory and push it (no Docker daemon)",
        description=(
            "Appends PACKAGE_DIR as one deterministic layer under /models to a base image and pushes it; "
            "prints REGISTRY/REPO@sha256:... Registry credentials come from --registry-config, "
            "REGISTRY_AUTH_FILE, DOCKER_CONFIG or ~/.docker/config.json, or AISERVING_REGISTRY_USERNAME/PASSWORD."
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
