"""The Python model wrapper: a kserve.Model serving an MLflow pyfunc."""
