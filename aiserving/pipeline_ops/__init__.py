"""Compile, run locally, submit and schedule our pipelines."""
