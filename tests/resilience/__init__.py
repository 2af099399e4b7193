"""Short, CI-sized versions of the resilience benchmarks (bench/faults.py, bench/crash.py, bench/fuzz.py)."""
