"""Probes of what masked-LM pretraining learned, run on the frozen encoder.

The probes take a stock ``transformers`` ``AutoModelForMaskedLM`` (or tunekit's
LSTM language model, which returns ``hidden_states`` the same way) and a
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
* :func:`next_word_probe` is its counterpart for the LSTM's language model, which
  reads left to right: it asks the forward direction which anchor comes after
  "X means".
* :func:`linear_probe` fits a logistic regression (scikit-learn) on
  mean-pooled final hidden states. Mean pooling over real tokens matches how
  the fine-tuned classifier pools, and a linear model on frozen features
  shows whether polarity is already there, readable with few parameters.
  This is the probe that predicts fine-tuned accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tunekit.data import synthetic
from tunekit.data.tokenization import load_tokenizer
from tunekit.study.arms import Probe


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

    def mask_positions(enc) -> tuple[torch.Tensor, torch.Tensor]:
        rows, cols = (enc["input_ids"] == tokenizer.mask_token_id).nonzero(as_tuple=True)
        if len(rows) != len(enc["input_ids"]):
            raise ValueError("each probe text needs exactly one mask")
        return rows, cols

    masked = [text.replace("[MASK]", tokenizer.mask_token) for text in texts]
    return _anchor_accuracy(model, tokenizer, masked, labels, candidates, batch_size, mask_positions)


def next_word_probe(
    model: torch.nn.Module,
    tokenizer,
    seed: int = 0,
    candidates: Sequence[str] = synthetic.ANCHORS,
    batch_size: int = 128,
) -> float:
    """Accuracy of a left-to-right LM (the LSTM's forward direction) at preferring
    ``candidates[label]`` as the word after "X means", over every polar word X of the corpus
    built with ``seed``. The LSTM LM lays out forward logits first (see
    ``LSTMForLanguageModeling``), so position t of ``logits`` predicts token t + 1."""
    texts, labels = synthetic.probe_sentences(seed)
    prefixes = [text[: text.index("[MASK]")].rstrip() for text in texts]

    def last_words(enc) -> tuple[torch.Tensor, torch.Tensor]:
        # The tokenizer appends [SEP]: the prefix's last word sits just before it.
        last = enc["attention_mask"].sum(1) - 2
        return torch.arange(len(last), device=last.device), last

    return _anchor_accuracy(model, tokenizer, prefixes, labels, candidates, batch_size, last_words)


@torch.no_grad()
def _anchor_accuracy(model, tokenizer, texts, labels, candidates, batch_size, positions) -> float:
    """How often ``candidates[label]`` outscores the others at the logits ``positions(enc)`` picks."""
    cand_ids = _candidate_ids(tokenizer, candidates)
    was_training = model.training
    model.eval()
    device = _device(model)
    correct = 0
    try:
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[start : start + batch_size]), padding=True, return_tensors="pt")
            enc = enc.to(device)
            rows, cols = positions(enc)
            logits = model(**enc).logits[rows, cols][:, cand_ids]
            gold = torch.tensor(labels[start : start + batch_size], device=device)
            correct += int((logits.argmax(-1) == gold).sum())
    finally:
        model.train(was_training)
    return correct / len(texts)


def _candidate_ids(tokenizer, candidates: Sequence[str]) -> list[int]:
    ids = tokenizer.convert_tokens_to_ids(list(candidates))
    if tokenizer.unk_token_id in ids:
        raise ValueError(f"the candidates {list(candidates)} must each be one token of the vocabulary")
    return ids


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


def probe_pretrained(
    model_dir: str | Path,
    probe: Probe,
    train: tuple[Sequence[str], Sequence[int]],
    test: tuple[Sequence[str], Sequence[int]],
    max_length: int,
    synthetic_seed: int | None = None,
) -> dict[str, float]:
    """Every probe that fits a saved pretraining: the linear probe (fit on ``train``, scored on
    ``test``) and, for a synthetic corpus, the word probe that fits its objective (``probe``, the
    pretraining's `tunekit.study.arms.Probe`)."""
    # On the process's device (accelerate's choice): from_pretrained loads onto the CPU, where the
    # H200 run's two probes (1 500 reviews each) ran; each took ~35 s with its data.
    model = probe.model_class.from_pretrained(model_dir).to(PartialState().device)
    tokenizer = load_tokenizer(str(model_dir))
    probes = {"linear_probe_accuracy": linear_probe(model, tokenizer, *train, *test, max_length=max_length)}
    if synthetic_seed is not None and probe.word_probe:  # an RTD encoder has no LM head to ask
        name, word_probe = (
            ("next_word_probe_accuracy", next_word_probe)
            if probe.left_to_right
            else ("masked_word_probe_accuracy", masked_word_probe)
        )
        probes[name] = word_probe(model, tokenizer, seed=synthetic_seed)
    return probes


def describe_probes(probe: Probe, results: dict) -> list[str]:
    """One report sentence per probe found in ``results`` (a pretraining's results and probes),
    naming the model as ``probe.model`` does."""
    model = probe.model
    notes = []
    if (linear := results.get("linear_probe_accuracy")) is not None:
        notes.append(
            f"Before fine-tuning, a linear probe (logistic regression on frozen mean-pooled features, "
            f"500 labels -> validation) reads {100 * linear:.1f} % accuracy from the pretrained {model}."
        )
    if (masked := results.get("masked_word_probe_accuracy")) is not None:
        notes.append(
            f"Masked-word probe of the {model} ('X means [MASK]' over every polar word, good vs bad): "
            f"{100 * masked:.1f} %."
        )
    if (following := results.get("next_word_probe_accuracy")) is not None:
        notes.append(
            f"Next-word probe of the {model} (the word after 'X means' over every polar word, good vs "
            f"bad): {100 * following:.1f} %."
        )
    return notes
