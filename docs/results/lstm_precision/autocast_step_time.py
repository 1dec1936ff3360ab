"""Why the precision runs did not use CPU bf16 autocast here: one LM training step of the study's
LSTM (biLSTM of 128 per direction, vocabulary 8 192, tied decoder; 4 096 tokens a step, as in
run_on_cpu.sh), forward and backward, in fp32 and under CPU bf16 autocast with the recurrence in
fp32 and in bf16. On a CPU without bf16 units (no amx_bf16/avx512_bf16) autocast's bf16 matmuls
are emulated.

    .venv/bin/python docs/results/lstm_precision/autocast_step_time.py 256
    .venv/bin/python docs/results/lstm_precision/autocast_step_time.py 512
"""

import sys
import time

import torch
from torch.nn.functional import cross_entropy

from tunekit.data.collators import language_model_labels
from tunekit.models.lstm import LSTMConfig
from tunekit.models.lstm_lm import LSTMForLanguageModeling

VOCAB, TOKENS_PER_STEP = 8192, 4096


def step_seconds(length: int, autocast: bool, fp32_recurrence: bool) -> float:
    torch.manual_seed(0)
    batch = TOKENS_PER_STEP // length
    input_ids = torch.randint(5, VOCAB, (batch, length))
    labels = language_model_labels(input_ids, bidirectional=True, pad_token_id=0)
    config = LSTMConfig(vocab_size=VOCAB, hidden_size=128, dropout=0.0, fp32_recurrence=fp32_recurrence)
    model = LSTMForLanguageModeling(config)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = model(input_ids).logits
        cross_entropy(logits.reshape(-1, VOCAB).float(), labels.reshape(-1)).backward()

    step()  # warm-up
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


if __name__ == "__main__":
    length = int(sys.argv[1])
    for autocast, fp32_recurrence in ((False, True), (True, True), (True, False)):
        recurrence = "fp32" if fp32_recurrence or not autocast else "bf16"
        seconds = step_seconds(length, autocast, fp32_recurrence)
        print(f"T={length} autocast={autocast} recurrence={recurrence}: {seconds:.2f} s/step", flush=True)
