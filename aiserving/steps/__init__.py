"""What each KFP component does, as plain functions over paths and values.

Components stay thin: they import one function from here and call it. Steps
take KFP artifacts through the small :class:`ArtifactLike` protocol, so unit
tests pass simple objects and never need the KFP runtime.
"""
