"""Benchmarks of the decision API (see docs/benchmarks.md); not part of the test suite."""
