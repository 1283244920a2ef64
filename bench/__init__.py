"""Benchmarks at national scale (issue 9): `make bench` runs them all through bench.run_all."""
