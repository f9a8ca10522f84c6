"""Peer servers for ``benchmarks/serving.py``: each file runs in that server's own venv, not in ``.venv``."""
