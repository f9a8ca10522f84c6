"""Artifact types our components produce besides KFP's built-in ones."""

from kfp import dsl


class InferenceService(dsl.Artifact):
    """A KServe InferenceService this run created or changed.

    Metadata: ``name``, ``namespace``, ``url``, ``revision``, ``traffic`` (a list of
    ``{revision, percent, tag}``), ``mode`` and ``target``. KFP only accepts the
    ``system`` and ``google`` schema namespaces, so the kind lives in the class
    name and the metadata, on top of ``system.Artifact``.
    """

    schema_title = "system.Artifact"
    schema_version = "0.0.1"
