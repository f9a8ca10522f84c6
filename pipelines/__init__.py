"""KFP v2 pipelines composed from our components, compiled to reusable YAML in ``compiled/``."""
