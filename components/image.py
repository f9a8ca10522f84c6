"""The image every component runs in: our package at the same version."""

from aiserving import __version__

# Image tag == package version, so a compiled pipeline pins the library it was written against.
COMPONENTS_IMAGE = f"ghcr.io/creativeflow/aiserving-components:{__version__}"
