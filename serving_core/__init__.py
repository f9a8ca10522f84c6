"""The core layer: errors, local processes, output folders, lazy names, Kubernetes object types, lineage, dtypes.

It imports nothing of ours; every other package may import it (docs/architecture.md, the import contracts).
"""
