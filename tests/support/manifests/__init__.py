"""Offline checks for manifests/: rendering, schemas and policies over rendered objects."""
