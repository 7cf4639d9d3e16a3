"""Reproducible benchmarks: `make bench`; results in docs/benchmarks.md."""
