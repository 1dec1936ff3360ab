"""Document bag of words: `objective: dbow` for ModernBERT encoders.

The encoder reads a document's opening window (the fine-tuning length) and mean-pools its last layer,
exactly as tunekit's ModernBERT classifier pools (`classifier_pooling: mean`); the masked LM's own
head (`head`, then the vocabulary `decoder` tied to the input embeddings) turns the pooled vector
into one softmax over the vocabulary, which is asked to predict the words of the *rest* of the
document (`tunekit.data.document_words`: every distinct word outside the window, weighted by idf).
It is PV-DBOW (paragraph vectors, Le & Mikolov 2014, whose IMDb result made them known) with a
transformer in place of the paragraph-vector lookup.

Why it pays where MLM, RTD and a causal LM did not (issue 33, docs/results/imdb_cpu): those learn a
word from its *neighbours*, and neighbours do not tell "great" from "terrible" (they fill the same
slots; after 11.7M tokens of MLM the nearest words to "great" are "good, bad, big"). Which words
share a *document* follows its verdict, so predicting them puts the review's polarity into the very
vector a classifier reads, after a few million tokens.

Loss: per document, the cross-entropy of its idf-weighted rest-word distribution against the
softmax, -sum_w weight(w) log p(w | pooled window); the mean over documents. The loop counts one
target item per document (`labels`, -100 for a document with nothing to predict), so accumulation,
DDP and resume are exact as for MLM. The model returns each document's loss (`document_losses`),
gathered from one (batch, vocab) log-softmax: no per-target copy of the logits is made.

What is saved: the stock `ModernBertForMaskedLM` (its `head` is what `ModernBertForSequenceClassification`
loads, so the classifier starts from the head that read the pooled vector). Its fill-mask output is
not meaningful: it never saw a [MASK] token. FLOPs: the body on every token, the head and vocabulary
once per document (tunekit.training.flops).
"""

from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import ModelOutput

from tunekit.config import ModelArguments
from tunekit.errors import TunekitError
from tunekit.models.build import build_pretraining_model
from tunekit.training.throughput import flops_per_token

__all__ = ["TASK", "DocumentWords", "DocumentWordsOutput", "build_document_words", "document_words_of"]

TASK = "document-words"


@dataclass
class DocumentWordsOutput(ModelOutput):
    document_losses: torch.Tensor | None = None  # (batch,): -sum_w weight(w) log p(w), fp32
    logits: torch.Tensor | None = None  # (batch, vocab): the pooled window's scores over the vocabulary


class DocumentWords(torch.nn.Module):
    """A ModernBERT masked LM whose head reads the mean-pooled window: batch in, document losses out."""

    def __init__(self, masked_lm: PreTrainedModel) -> None:
        super().__init__()
        if not all(hasattr(masked_lm, name) for name in ("model", "head", "decoder")):
            raise TunekitError(
                "objective=dbow needs ModernBERT's masked LM (model, head, decoder); "
                f"got {type(masked_lm).__name__}"
            )
        self.masked_lm = masked_lm
        self.config = masked_lm.config

    def get_input_embeddings(self) -> torch.nn.Embedding:
        return self.masked_lm.get_input_embeddings()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        target_words: torch.Tensor | None = None,
        target_weights: torch.Tensor | None = None,
        **_: Any,
    ) -> DocumentWordsOutput:
        hidden = self.masked_lm.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if attention_mask is None:  # a batch of equal lengths carries none (PaddingCollator)
            pooled = hidden.mean(1)
        else:
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1)
        logits = self.masked_lm.decoder(self.masked_lm.head(pooled))  # (batch, vocab)
        losses = None
        if target_words is not None and target_weights is not None:
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            losses = -(log_probs.gather(1, target_words) * target_weights.float()).sum(1)
        return DocumentWordsOutput(document_losses=losses, logits=logits)

    def training_flops_per_token(self, seq_len: float, head_fraction: float) -> float:
        """The masked LM's count with its head on one row per window (`seq_len` tokens), not on the
        targets: the softmax runs once per document, the draws only index it."""
        return flops_per_token(self.masked_lm, seq_len, 1.0 / max(1.0, seq_len))


def build_document_words(model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase) -> DocumentWords:
    return DocumentWords(build_pretraining_model(model_args, tokenizer))


def document_words_of(model: torch.nn.Module) -> DocumentWords | None:
    """The DocumentWords inside DDP / compile wrappers, or None for every other model."""
    while not isinstance(model, DocumentWords):
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, torch.nn.Module):
            return None
        model = inner
    return model
