"""Benchmarks. Each prints one JSON document; `python -m benchmarks` runs them all."""
