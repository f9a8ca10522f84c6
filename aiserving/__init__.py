"""CreativeFlow AI serving: MLflow models to GPU-backed KServe endpoints."""

__version__ = "0.1.0"
