"""Reproducible benchmarks (see bench/README.md). Not part of the test run; tests/resilience reuses bench.common."""
