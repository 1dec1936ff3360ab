"""Benchmarks: measured costs of training, written as tables and plots, one process each.

`trainer_comparison` (`scripts/benchmark.py --preset smoke|cpu|gpu`): tunekit against the
transformers Trainer. Modules: `presets` (what is timed), `corpus` (the text files every system
reads), `measure` (step window, counts, peak memory), `tunekit_legs` / `trainer_legs` (the two
sides), `legs` (shared settings, FLOPs), `table` (rows, ratios, formats).
`sequence_length` (`scripts/sequence_length.py`): time per training token of an LSTM and a
transformer of equal size as the sequence grows.
"""
