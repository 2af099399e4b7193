"""Reproducible benchmarks (see bench/README.md). Not part of the test run; tests/resilience reuses their
processes and load generators (bench.processes, bench.load)."""
