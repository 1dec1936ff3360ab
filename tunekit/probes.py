"""Probes of what masked-LM pretraining learned, run on the frozen encoder.

Both probes take a stock ``transformers`` ``AutoModelForMaskedLM`` and a
``PreTrainedTokenizerFast`` (anything callable like one, with ``mask_token``,
``mask_token_id`` and ``convert_tokens_to_ids``). They run before
fine-tuning, so a demo can tell "pretraining learned nothing" apart from
"fine-tuning threw it away".

* :func:`masked_word_probe` asks the MLM head to fill "X means [MASK] ." for
  every polar word X of the synthetic corpus and scores it right when the
  correct anchor ("good"/"bad") outscores the other one. Restricting the
  choice to the two anchors measures polarity knowledge, not fluency. It is
  the stricter probe: it needs the head to bind the anchor to the one word
  in front of it, which a small encoder learns later than it learns which
  words go together.
* :func:`linear_probe` fits a logistic regression (scikit-learn) on
  mean-pooled final hidden states. Mean pooling over real tokens matches how
  the fine-tuned classifier pools, and a linear model on frozen features
  shows whether polarity is already there, readable with few parameters.
  This is the probe that predicts fine-tuned accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from . import synthetic


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def masked_word_probe(
    model: torch.nn.Module,
    tokenizer,
    seed: int = 0,
    negated: bool = False,
    texts: Sequence[str] | None = None,
    labels: Sequence[int] | None = None,
    candidates: Sequence[str] = synthetic.ANCHORS,
    batch_size: int = 128,
) -> float:
    """Accuracy of the MLM at choosing ``candidates[label]`` for the masked slot.

    By default the sentences are :func:`synthetic.probe_sentences` for the
    corpus built with ``seed`` (the seed decides which words are positive);
    ``negated`` probes "not X means [MASK] ." instead, where the answer flips.
    Custom ``texts`` must each hold exactly one literal "[MASK]".
    """
    if texts is None:
        texts, labels = synthetic.probe_sentences(seed, negated=negated)
    if labels is None or len(texts) != len(labels):
        raise ValueError("masked_word_probe needs one label per text")
    cand_ids = tokenizer.convert_tokens_to_ids(list(candidates))
    if tokenizer.unk_token_id in cand_ids:
        raise ValueError(f"the candidates {list(candidates)} must each be one token of the vocabulary")
    was_training = model.training
    model.eval()
    device = _device(model)
    correct = 0
    for start in range(0, len(texts), batch_size):
        batch = [t.replace("[MASK]", tokenizer.mask_token) for t in texts[start : start + batch_size]]
        enc = tokenizer(batch, padding=True, return_tensors="pt").to(device)
        rows, cols = (enc["input_ids"] == tokenizer.mask_token_id).nonzero(as_tuple=True)
        if len(rows) != len(batch):
            model.train(was_training)
            raise ValueError("each probe text needs exactly one mask")
        logits = model(**enc).logits[rows, cols][:, cand_ids]
        gold = torch.tensor(labels[start : start + batch_size], device=device)
        correct += int((logits.argmax(-1) == gold).sum())
    model.train(was_training)
    return correct / len(texts)


@torch.no_grad()
def mean_pooled_features(
    model: torch.nn.Module, tokenizer, texts: Sequence[str], max_length: int = 128, batch_size: int = 64
) -> np.ndarray:
    """Final-layer hidden states averaged over non-padding tokens, one row per text."""
    was_training = model.training
    model.eval()
    device = _device(model)
    rows = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(
            list(texts[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        ).to(device)
        hidden = model(**enc, output_hidden_states=True).hidden_states[-1]
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        rows.append(((hidden * mask).sum(1) / mask.sum(1)).float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(rows)


def linear_probe(
    model: torch.nn.Module,
    tokenizer,
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    test_texts: Sequence[str],
    test_labels: Sequence[int],
    max_length: int = 128,
    c: float = 1.0,
) -> float:
    """Test accuracy of a logistic regression on frozen mean-pooled features."""
    x_train = mean_pooled_features(model, tokenizer, train_texts, max_length)
    x_test = mean_pooled_features(model, tokenizer, test_texts, max_length)
    # Standardising first: hidden-state scales differ a lot between a random
    # and a trained encoder, and one C should serve both.
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    clf.fit(x_train, np.asarray(train_labels))
    return float(clf.score(x_test, np.asarray(test_labels)))
