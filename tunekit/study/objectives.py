"""Pretraining objectives side by side, at equal compute (issue 33).

An objective arm is a pretrained transformer arm with a suffix naming how its encoder was pretrained:

- `transformer_pretrained` — masked LM, 15 % of the tokens masked (the recipe's own objective);
- `transformer_pretrained_mlm40` — masked LM at 40 %: Wettig et al. (2023), "Should You Mask 15% in
  Masked Language Modeling?", find 40 % better than 15 % for BERT-large and no worse for smaller ones;
- `transformer_pretrained_rtd` — replaced-token detection (ELECTRA, `tunekit.training.rtd`);
- `transformer_pretrained_dbow` — document bag of words: the mean-pooled opening window predicts the
  words of the rest of the document (PV-DBOW with a transformer, `tunekit.training.document_words`).

Each has its own pretraining (`transformer`, `transformer_mlm40`, `transformer_rtd`,
`transformer_dbow`), made from the
same transformer pretraining recipe with the changes below (`Pretraining.recipe_changes` in the arm
registry, tunekit.study.arms), and all of them share one scratch twin, `transformer_scratch`: the
comparison is of objectives, the fine-tuning and the labels are the same.

The objectives cost different amounts per token (a masked-only MLM head runs on 15 % or 40 % of the
tokens; RTD adds a generator and a detection head on every token), so a fair comparison gives them
equal FLOPs, not equal steps or tokens: `pretrain_budget_unit: flops` turns each budget into the
steps that spend it, from the model's PaLM FLOPs per token (`tunekit.training.flops`) estimated before the
run; the report and the plot use the FLOPs each pretraining really spent (its `train_flops`).
"""

import dataclasses
import math
from typing import Any

from tunekit.config import DataArguments, ModelArguments, TrainArguments
from tunekit.data.tokenization import load_tokenizer
from tunekit.models.build import build_pretraining_model
from tunekit.models.last_layer import has_query_rows
from tunekit.models.mlm_head import install_masked_only_head
from tunekit.training.document_words import build_document_words
from tunekit.training.rtd import build_replaced_token_detection
from tunekit.training.throughput import flops_per_token

# What each objective's pretraining changes in the transformer pretraining recipe (its registry entry
# in tunekit.study.arms names the pretraining `transformer_<objective>`).
OBJECTIVE_CHANGES: dict[str, dict[str, Any]] = {
    "mlm40": {"mlm_probability": 0.4},
    "rtd": {"objective": "rtd"},
    "dbow": {"objective": "dbow"},
}
OBJECTIVE_ARMS = tuple(f"transformer_pretrained_{objective}" for objective in OBJECTIVE_CHANGES)


def estimated_flops_per_token(
    model_args: ModelArguments, data_args: DataArguments, tokenizer_dir: str
) -> float:
    """PaLM training FLOPs per token of the model a pretraining recipe builds, as the loop will count
    them: a masked LM's head (and, where it can, its last layer) on the masked share of the tokens,
    RTD's generator head on that share, dbow's head once per window. Built on the CPU from the
    config; nothing is trained."""
    tokenizer = load_tokenizer(tokenizer_dir)
    if model_args.is_replaced_token_detection:
        model = build_replaced_token_detection(model_args, tokenizer)
        return flops_per_token(model, data_args.max_seq_length, data_args.mlm_probability)
    if model_args.is_document_words:  # the head once per window (it counts itself)
        return flops_per_token(build_document_words(model_args, tokenizer), data_args.max_seq_length)
    model = build_pretraining_model(model_args, tokenizer)
    masked_only = not (model_args.is_lstm or model_args.is_decoder) and install_masked_only_head(model)
    share = data_args.mlm_probability if masked_only else 1.0
    last_layer_share = share if masked_only and has_query_rows(model) else 1.0
    return flops_per_token(model, data_args.max_seq_length, share, last_layer_share)


def steps_for_flops(budget: int, flops_per_token: float, tokens_per_step: int) -> int:
    """Optimizer steps that spend at least `budget` training FLOPs."""
    return max(1, math.ceil(budget / (flops_per_token * tokens_per_step)))


def with_flops_budget(
    run_args: tuple[ModelArguments, DataArguments, TrainArguments],
    budget: int,
    tokens_per_step: int,
    tokenizer_dir: str,
) -> TrainArguments:
    """The stage's TrainArguments lengthened or shortened to spend `budget` FLOPs."""
    model_args, data_args, train_args = run_args
    per_token = estimated_flops_per_token(model_args, data_args, tokenizer_dir)
    return dataclasses.replace(train_args, max_steps=steps_for_flops(budget, per_token, tokens_per_step))
