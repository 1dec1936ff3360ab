"""Replaced-token detection (ELECTRA, Clark et al. 2020): `objective: rtd` for the encoders.

A small generator MLM fills the masked positions of a block with tokens sampled from its softmax;
the encoder that will be fine-tuned (the discriminator) labels every token of the corrupted block
as original or replaced. The masked LM learns from the ~15 % of tokens it masks; the discriminator
learns from all of them, which is why the objective pays most at small compute.

- **Generator:** a stock `ElectraForMaskedLM` (what `AutoModelForMaskedLM` builds from an
  `ElectraConfig`) whose hidden size, feed-forward width and head count are the discriminator's
  times `generator_size_ratio` (the paper's 1/4 for ELECTRA-Small), with the same depth. Its
  embedding width is the discriminator's hidden size, projected down to its own (Electra's
  `embedding_size` / `embeddings_project`), so the two share one token-embedding table; the
  generator's output decoder is tied to it as well, as in the paper. Absolute position embeddings
  are shared too where the discriminator indexes them as ELECTRA does (BERT, DistilBERT); ModernBERT
  has rotary positions and RoBERTa offsets its position ids past the padding id, so there the
  generator keeps its own.
- **Replacements:** the generator's softmax (at `rtd_sampling_temperature`, the paper's 1) is sampled
  at the masked positions by inverse CDF, with
  one uniform draw per masked position that the collator (`tunekit.data.masking.ReplacedTokenCollator`)
  makes from the block's own seeded generator
  (seed, epoch, block id). A block's replacements therefore depend on the block and the model alone,
  never on the batch it sits in, its process or a resume, exactly as its masks do, so gradient
  accumulation, DDP and resume are as exact as for the masked LM. A sampled token that equals the
  original is labelled original (the paper's rule).
- **Loss:** the generator's cross-entropy, mean over masked tokens, plus `rtd_discriminator_weight`
  (the paper's lambda = 50) times the discriminator's binary cross-entropy, mean over every real
  (non-padding) token. No gradient flows from the discriminator into the generator: sampling cuts it.

Exact accumulation: the two terms have different denominators (masked tokens and real tokens), so
the loop counts both over the whole optimizer step and all processes before the first micro-batch
(`step_counts`, one all-reduce) and each micro-batch contributes its per-term sums divided by those
global counts (`micro_batch_loss`). Four micro-batches of 2 then give exactly the gradient of one
batch of 8, and 2 processes x 4 that of 1 x 8.

What is saved: the discriminator's body, as the stock encoder (`AutoModel` for its model type:
`AutoModelForSequenceClassification.from_pretrained` adds a new classification head, as it does on
any pretrained encoder), in the output directory; the generator, a complete masked LM (fill-mask
works on it), in `generator/` beside it. The 1-logit detection head is dropped: fine-tuning does
not use it.
"""

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch.nn.functional import binary_cross_entropy_with_logits, cross_entropy
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    ElectraConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import ModelOutput

from tunekit.atomic import staged_files
from tunekit.config import ModelArguments
from tunekit.errors import TunekitError
from tunekit.models.build import pad_vocabulary, transformer_config
from tunekit.models.mlm_head import MASKED_POSITIONS, install_masked_only_head, masked_targets
from tunekit.models.mlm_head import masked_positions as mlm_positions
from tunekit.training.throughput import flops_per_token

__all__ = [
    "GENERATOR_DIR",
    "DetectionOutput",
    "ReplacedTokenDetection",
    "build_replaced_token_detection",
    "evaluate_detection",
    "generator_config",
    "micro_batch_loss",
    "replaced_token_detection_of",
    "save_replaced_token_detection",
]

logger = logging.getLogger(__name__)

OBJECTIVE = "rtd"
TASK = "replaced-token-detection"
GENERATOR_DIR = "generator"
# Discriminators whose absolute position table is indexed from 0, as the Electra generator's is.
_SHARED_POSITION_TYPES = ("bert", "distilbert")


def generator_config(
    model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, vocab_size: int
) -> ElectraConfig:
    """The generator: the discriminator's width, feed-forward size and heads times the ratio (heads
    at least 1, the width a multiple of them), the same depth, embeddings as wide as the
    discriminator's hidden size (shared with it) and tied to its output decoder."""
    ratio = model_args.generator_size_ratio
    heads = max(1, round(model_args.num_attention_heads * ratio))
    hidden = max(heads, round(model_args.hidden_size * ratio / heads) * heads)
    return ElectraConfig(
        vocab_size=vocab_size,
        embedding_size=model_args.hidden_size,
        hidden_size=hidden,
        num_hidden_layers=model_args.num_hidden_layers,
        num_attention_heads=heads,
        intermediate_size=max(1, round(model_args.intermediate_size * ratio)),
        max_position_embeddings=model_args.max_position_embeddings,
        hidden_dropout_prob=model_args.dropout,
        attention_probs_dropout_prob=model_args.dropout,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )


@dataclass
class DetectionOutput(ModelOutput):
    """Per-example sums, so evaluation can gather them exactly (`gather_for_metrics` drops the
    duplicates that even batches add) and training can divide them by step-wide counts."""

    term_sums: torch.Tensor | None = None  # (batch, 2): generator CE over masked, discriminator BCE over real
    term_counts: torch.Tensor | None = None  # (batch, 2): masked tokens, real tokens
    correct: torch.Tensor | None = None  # (batch,): real tokens the discriminator labels right
    replaced: torch.Tensor | None = None  # (batch,): real tokens that differ from the original
    generator_correct: torch.Tensor | None = None  # (batch,): masked tokens whose argmax is the original
    logits: torch.Tensor | None = None  # (batch, seq): the discriminator's replaced-token logits


class ReplacedTokenDetection(torch.nn.Module):
    """Generator MLM + discriminator encoder + 1-logit detection head: batch in, per-term sums out."""

    def __init__(
        self,
        discriminator: PreTrainedModel,
        generator: PreTrainedModel,
        discriminator_weight: float,
        sampling_temperature: float = 1.0,
    ) -> None:
        super().__init__()
        self.sampling_temperature = sampling_temperature
        # tunekit's attention switch (`install_known_padding_masks`) reaches only the first of the two
        # (the generator); packed pretraining blocks carry no attention mask, so neither needs it.
        self.generator, self.discriminator = generator, discriminator
        self.discriminator_weight = discriminator_weight
        width = discriminator.config.hidden_size
        self.detection_head = torch.nn.Sequential(
            torch.nn.Linear(width, width), torch.nn.GELU(), torch.nn.Linear(width, 1)
        )
        std = getattr(discriminator.config, "initializer_range", 0.02)
        for layer in (self.detection_head[0], self.detection_head[2]):
            torch.nn.init.normal_(layer.weight, std=std)
            torch.nn.init.zeros_(layer.bias)
        self._share_embeddings()
        install_masked_only_head(generator)  # its head runs on the masked positions only

    def _share_embeddings(self) -> None:
        shared = self.discriminator.get_input_embeddings()
        embeddings = self.generator.base_model.embeddings
        if embeddings.word_embeddings.weight.shape != shared.weight.shape:
            raise TunekitError(
                "generator_size_ratio: the generator's embeddings must match the discriminator's "
                f"({tuple(embeddings.word_embeddings.weight.shape)} vs {tuple(shared.weight.shape)})"
            )
        embeddings.word_embeddings = shared
        self.generator.get_output_embeddings().weight = shared.weight
        own = getattr(getattr(self.discriminator, "embeddings", None), "position_embeddings", None)
        if (
            self.discriminator.config.model_type in _SHARED_POSITION_TYPES
            and isinstance(own, torch.nn.Embedding)
            and own.weight.shape == embeddings.position_embeddings.weight.shape
        ):
            embeddings.position_embeddings = own

    def get_input_embeddings(self) -> torch.nn.Embedding:
        return self.discriminator.get_input_embeddings()

    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        masked_positions: torch.Tensor | None = None,
        replacement_draws: torch.Tensor | None = None,
        **_: Any,  # the MLM collator's last-layer keys: the generator's last layer runs everywhere
    ) -> DetectionOutput:
        positions = masked_positions if masked_positions is not None else mlm_positions(labels)
        batch, length = labels.shape
        generator_logits = self.generator(
            input_ids=input_ids, attention_mask=attention_mask, **{MASKED_POSITIONS: positions}
        ).logits.reshape(-1, self.generator.config.vocab_size)  # (masked, vocab)
        targets, examples = masked_targets(labels, positions)
        generator_rows = cross_entropy(generator_logits, targets, reduction="none").float()
        zeros = torch.zeros(batch, device=labels.device)
        generator_sums = zeros.index_add(0, examples, generator_rows)
        with torch.no_grad():
            if replacement_draws is None:  # not from ReplacedTokenCollator: the global RNG
                replacement_draws = torch.rand(positions.shape[0], device=labels.device)
            sampled = sample_replacements(
                generator_logits.detach() / self.sampling_temperature, replacement_draws
            )
            generator_hits = zeros.index_add(0, examples, (generator_logits.argmax(-1) == targets).float())
            corrupted, replaced = replace_tokens(input_ids, positions, targets, sampled)
        hidden = self.discriminator(input_ids=corrupted, attention_mask=attention_mask).last_hidden_state
        logits = self.detection_head(hidden).squeeze(-1)  # (batch, seq)
        real = (
            attention_mask.bool()
            if attention_mask is not None
            else torch.ones(batch, length, dtype=torch.bool, device=labels.device)
        )
        per_token = binary_cross_entropy_with_logits(logits.float(), replaced.float(), reduction="none")
        discriminator_sums = (per_token * real).sum(1)
        masked_counts = (labels != -100).sum(1)
        return DetectionOutput(
            term_sums=torch.stack([generator_sums, discriminator_sums], 1),
            term_counts=torch.stack([masked_counts, real.sum(1)], 1),
            correct=(((logits > 0) == replaced) & real).sum(1),
            replaced=(replaced & real).sum(1),
            generator_correct=generator_hits,
            logits=logits,
        )

    @property
    def term_weights(self) -> tuple[float, float]:
        return 1.0, self.discriminator_weight

    def step_counts(self, window: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        """(masked tokens, real tokens) of this process's micro-batches: the two loss denominators."""
        masked = sum((batch["labels"] != -100).sum() for batch in window)
        real = sum(
            batch["attention_mask"].sum()
            if "attention_mask" in batch
            else batch["input_ids"].new_tensor(batch["input_ids"].numel())
            for batch in window
        )
        return torch.stack([masked, real])

    def training_flops_per_token(self, seq_len: float, masked_fraction: float) -> float:
        """PaLM training FLOPs per token of both models (tunekit.training.flops): the generator with its head
        on the masked share of the tokens, the discriminator and its detection head on every token."""
        head = sum(p.numel() for p in self.detection_head.parameters())
        return (
            flops_per_token(self.generator, seq_len, masked_fraction)
            + flops_per_token(self.discriminator, seq_len)
            + 6 * head
        )


def replace_tokens(
    input_ids: torch.Tensor, positions: torch.Tensor, originals: torch.Tensor, sampled: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The discriminator's input (the original block with `sampled` at the flat `positions`) and its
    labels: True where a token differs from the original. A sampled token that equals the original
    is labelled original, as in the paper: the discriminator is asked what it can see."""
    original = input_ids.clone()
    original.view(-1)[positions] = originals  # the MLM input held [MASK] or a random token there
    corrupted = original.clone()
    corrupted.view(-1)[positions] = sampled
    return corrupted, corrupted != original


def sample_replacements(logits: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """One token per row of `logits` from its softmax, by inverse CDF at the uniform `draws`.

    Deterministic given the draws (no RNG here), so a row's sample depends on its own logits and
    draw only. Rows of probability 0 (the padded vocabulary rows, whose bias is -1e4) are never
    picked: the CDF is flat across them and the search returns the first index that reaches the draw."""
    probabilities = torch.softmax(logits.float(), dim=-1)
    cdf = probabilities.cumsum(-1)
    values = (draws.to(cdf.dtype) * cdf[:, -1]).unsqueeze(1)
    return torch.searchsorted(cdf, values).squeeze(1).clamp_(max=logits.shape[-1] - 1)


def replaced_token_detection_of(model: torch.nn.Module) -> ReplacedTokenDetection | None:
    """The ReplacedTokenDetection inside DDP / compile wrappers, or None for every other model."""
    while not isinstance(model, ReplacedTokenDetection):
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, torch.nn.Module):
            return None
        model = inner
    return model


def micro_batch_loss(
    model: torch.nn.Module,
    detection: ReplacedTokenDetection,
    batch: dict[str, torch.Tensor],
    accelerator: Accelerator,
    step_counts: torch.Tensor,
) -> torch.Tensor:
    """This micro-batch's share of the step's loss: each term's sum over its items divided by the
    items of the whole step on all processes (`step_counts`, reduced), then weighted. Summed over
    micro-batches and processes it is the step's mean generator loss + lambda x mean
    discriminator loss."""
    with accelerator.autocast():
        output = model(**batch)  # the wrapped model: DDP needs its own forward called
    sums = output.term_sums.sum(0)
    weights = sums.new_tensor(detection.term_weights)
    return (sums * weights / step_counts.to(sums.dtype)).sum()


def evaluate_detection(
    model: torch.nn.Module, dataloader: Any, accelerator: Accelerator, prefix: str = "eval"
) -> dict[str, float]:
    """Exact distributed evaluation: loss (as trained), each term, the discriminator's accuracy over
    real tokens beside the share of replaced tokens (always answering "original" scores 1 minus
    it), and the generator's accuracy on the masked tokens."""
    detection = replaced_token_detection_of(model)
    assert detection is not None
    model.eval()
    # generator CE, discriminator BCE, masked, real, right labels, replaced, generator argmax hits
    totals = torch.zeros(7, dtype=torch.float64)
    with torch.no_grad():
        for batch in dataloader:
            with accelerator.autocast():
                output = model(**batch)
            per_example = torch.cat(
                [
                    output.term_sums.double(),
                    output.term_counts.double(),
                    torch.stack([output.correct, output.replaced, output.generator_correct], 1).double(),
                ],
                1,
            )
            totals += accelerator.gather_for_metrics(per_example).sum(0).cpu()
    model.train()
    generator_sum, discriminator_sum, masked, real, correct, replaced, generator_hits = totals.tolist()
    generator_loss = generator_sum / max(masked, 1)
    discriminator_loss = discriminator_sum / max(real, 1)
    metrics = {
        "loss": generator_loss + detection.discriminator_weight * discriminator_loss,
        "generator_loss": generator_loss,
        "generator_perplexity": math.exp(min(generator_loss, 50.0)),
        "generator_accuracy": generator_hits / max(masked, 1),
        "discriminator_loss": discriminator_loss,
        "discriminator_accuracy": correct / max(real, 1),
        "replaced_share": replaced / max(real, 1),
    }
    return {f"{prefix}_{key}": value for key, value in metrics.items()}


def build_replaced_token_detection(
    model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase
) -> ReplacedTokenDetection:
    """A fresh discriminator (the recipe's encoder) and generator (its size times the ratio)."""
    if model_args.model_name_or_path:
        raise TunekitError(
            "model_name_or_path: objective rtd pretrains its generator and discriminator from scratch; "
            "fine-tune the saved discriminator with scripts/finetune.py instead"
        )
    config = transformer_config(model_args, tokenizer)
    discriminator = AutoModel.from_config(config)
    if getattr(discriminator, "pooler", None) is not None:
        # BERT's and RoBERTa's pooler reads nothing here (DDP refuses unused parameters); a
        # classifier loaded from the saved encoder initialises its own, as ELECTRA's has none.
        discriminator.pooler = None
    generator = AutoModelForMaskedLM.from_config(generator_config(model_args, tokenizer, config.vocab_size))
    generator = pad_vocabulary(generator, len(tokenizer))  # the padded rows are never sampled
    return ReplacedTokenDetection(
        discriminator, generator, model_args.rtd_discriminator_weight, model_args.rtd_sampling_temperature
    )


def save_replaced_token_detection(
    accelerator: Accelerator, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, output_dir: Path
) -> None:
    """The discriminator (stock encoder) into `output_dir` and the generator (stock masked LM) into
    `output_dir/generator`, each with the tokenizer; every process calls it (FSDP gathers first),
    the main process writes, each file complete or absent."""
    detection = replaced_token_detection_of(model)
    assert detection is not None
    weights = accelerator.get_state_dict(model)
    if not accelerator.is_main_process:
        return
    with staged_files(output_dir) as staging:
        for part, target in (("discriminator", staging), ("generator", staging / GENERATOR_DIR)):
            prefix = f"{part}."
            state = {
                key.removeprefix(prefix): value for key, value in weights.items() if key.startswith(prefix)
            }
            getattr(detection, part).save_pretrained(target, state_dict=state, save_function=accelerator.save)
            tokenizer.save_pretrained(target)


def detection_results(model: torch.nn.Module, model_args: ModelArguments) -> dict[str, Any]:
    """What results.json says about an RTD pretraining besides the loop's numbers."""
    detection = replaced_token_detection_of(model)
    assert detection is not None
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    return {
        "objective": OBJECTIVE,
        "generator_size_ratio": model_args.generator_size_ratio,
        "rtd_discriminator_weight": model_args.rtd_discriminator_weight,
        "rtd_sampling_temperature": model_args.rtd_sampling_temperature,
        "discriminator_parameters": count(detection.discriminator),
        "generator_parameters": count(detection.generator),
        "generator_hidden_size": detection.generator.config.hidden_size,
        "generator_saved_in": GENERATOR_DIR,
    }
