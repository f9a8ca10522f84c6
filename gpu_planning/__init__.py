"""GPU planning: memory estimates of packaged models, the GPU catalog, and fleet placement on GPU nodes.

The estimate (:mod:`gpu_planning.estimate`) reads a package's own tensors; the catalog
(:mod:`gpu_planning.catalog`) holds memory, MIG profiles with their placement rules and time-slicing limits; the
planner (:mod:`gpu_planning.plan`) places a fleet with the fewest GPUs and :mod:`gpu_planning.render` turns a
plan into deploy-fleet input, the GPU Operator's configs and a report. Frameworks (onnx, torch, tensorflow,
OR-Tools) are imported by the functions that use them.
"""
