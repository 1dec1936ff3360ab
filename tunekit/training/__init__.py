"""The one training loop and what it needs: step, precision, checkpoints, preemption, evaluation, throughput.

`tasks` is the entry every script and the study call: recipe -> data -> model -> loop -> output dir.
"""
