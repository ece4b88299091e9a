"""Benchmarks (`make bench`): measured, never asserted. Figures go to BENCHMARKS.md."""
