"""Batch inference jobs: shard an input, call a V2 endpoint with adaptive concurrency, write results atomically."""
