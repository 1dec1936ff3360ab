"""Speed benchmarks: tunekit against the transformers Trainer (`trainer_comparison`), one process.

`scripts/benchmark.py --preset smoke|cpu|gpu` runs a preset and writes the table as JSON and
Markdown. Modules: `presets` (what is timed), `corpus` (the text files every system reads),
`measure` (step window, counts, peak memory), `tunekit_legs` / `trainer_legs` (the two sides),
`legs` (shared settings, FLOPs), `table` (rows, ratios, formats).
"""
