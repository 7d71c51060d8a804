"""Evaluation suites and benchmarks."""
