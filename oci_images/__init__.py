"""Daemonless OCI image builds: a package directory appended as layers to a base image.

``build_image`` is the entry point; the modules below it each do one job: ``layer`` (the
deterministic tar), ``layering`` (which files go into which layer), ``push`` (skip, mount or
upload each layer, concurrently), ``digests`` (hash while streaming), ``registry``/``auth``/``credentials``
(the distribution-spec client), ``oci_layout`` (an image layout directory), ``image`` (base
reading and append), ``digest_cache`` (fast re-push) and ``progress``.
"""

from oci_images.build import BuildResult, build_image
from oci_images.layer import LayerPlan, scan_tree
from oci_images.layering import PlannedLayer, plan_layers
from oci_images.reference import LayoutReference, RegistryReference, parse_reference

__all__ = [
    "BuildResult",
    "LayerPlan",
    "LayoutReference",
    "PlannedLayer",
    "RegistryReference",
    "build_image",
    "parse_reference",
    "plan_layers",
    "scan_tree",
]
