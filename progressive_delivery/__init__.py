"""Progressive delivery: metric-gated canary analysis, a shadow stage and the rollout state machine.

Pure domain logic; it talks to Prometheus over HTTP and to an InferenceService only through the
``TrafficControl`` protocol that the application layer implements with ``inference_services``.
"""
