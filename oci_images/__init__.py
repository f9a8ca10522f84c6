"""Daemonless OCI image builds: a package directory appended as one layer to a base image.

``build_image`` is the entry point; the modules below it each do one job: ``layer`` (the
deterministic tar), ``digests`` (hash while streaming), ``registry``/``auth``/``credentials``
(the distribution-spec client), ``oci_layout`` (an image layout directory), ``image`` (base
reading and append), ``digest_cache`` (fast re-push) and ``progress``.
"""

from oci_images.build import BuildResult, build_image
from oci_images.layer import LayerPlan, scan_tree
from oci_images.reference import LayoutReference, RegistryReference, parse_reference

__all__ = [
    "BuildResult",
    "LayerPlan",
    "LayoutReference",
    "RegistryReference",
    "build_image",
    "parse_reference",
    "scan_tree",
]
