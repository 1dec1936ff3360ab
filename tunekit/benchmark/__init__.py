"""Benchmarks: measured costs of training, written as tables and plots."""
