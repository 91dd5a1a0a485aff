"""Benchmarks: `python -m bench` runs every one and prints the tables."""
