"""Local stand-ins of cluster services for the demo and the tests."""
