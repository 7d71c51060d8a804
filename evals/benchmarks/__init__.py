"""Benchmarks that print JSON; ratios are measured within one run, since these machines are noisy."""
