"""The LSTM precision report from what two LSTM studies (fp32 and bf16 recurrence) leave on disk;
and the gradient-flow probe: one norm per position, causal (the target itself gets none), fp32 vs
bf16 recurrence on the same weights, the model left as it was; and its plot."""

import json
import math

import pytest
import torch

from tunekit.errors import TunekitError
from tunekit.lstm import LSTMConfig, LSTMForSequenceClassification
from tunekit.lstm_lm import LSTMForLanguageModeling
from tunekit.study.lstm_precision import (
    PrecisionArguments,
    blocks_of,
    input_gradient_norms,
    plot_gradient_flow,
    read_texts,
    write_precision_report,
)
from tunekit.tokenizer_training import train_wordpiece

TEXTS = [f"the film number {i} was {'good' if i % 2 else 'bad'} and the actors were fine" for i in range(200)]


def fake_study(root, tokenizer, accuracies: dict[str, list[float]]):
    """A study directory as `Study` leaves it: tokenizer, two language models, metrics, results."""
    tokenizer.save_pretrained(root / "tokenizer")
    for seed_offset, name in enumerate(("lstm", "lstm_bf16")):
        torch.manual_seed(seed_offset)
        pretrain = root / "pretrain" / name
        config = LSTMConfig(vocab_size=len(tokenizer), hidden_size=16, fp32_recurrence=name == "lstm")
        LSTMForLanguageModeling(config).save_pretrained(pretrain)
        records = [{"step": s, "loss": 5.0 - s / 10} for s in (1, 2, 3)] + [{"step": 3, "eval_loss": 4.8}]
        (pretrain / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        (pretrain / "results.json").write_text(json.dumps({"tokens_seen": 3000, "train_runtime": 1.5}))
    rows = [
        {"arm": arm, "budget": 100, "seed": seed, "test_accuracy": accuracy, "test_f1": accuracy}
        for arm, values in accuracies.items()
        for seed, accuracy in enumerate(values)
    ]
    (root / "results.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return root


def test_precision_report_has_loss_curves_accuracy_difference_speed_and_gradient_flow(tmp_path):
    tokenizer = train_wordpiece(TEXTS, 120, 64)
    study = fake_study(
        tmp_path / "study",
        tokenizer,
        {"lstm_pretrained": [0.70, 0.72, 0.71], "lstm_pretrained_bf16": [0.69, 0.70, 0.70]},
    )
    report = write_precision_report(
        {16: study},
        TEXTS,
        tmp_path / "out",
        blocks=2,
        speed_hidden_size=8,
        speed_batch_tokens=64,
        title_note=" (smoke)",
    )
    text = report.read_text()
    # The recurrence alone, timed in its three ways: one row per T, three speeds.
    speed_rows = text.split("## Speed of the recurrence alone")[1].split("##")[0]
    (row,) = [line for line in speed_rows.splitlines() if line.startswith("| 16 |")]
    assert all(float(cell.replace(",", "")) > 0 for cell in row.strip("|").split("|")[1:])
    assert text.startswith("# LSTM recurrence: bf16 vs fp32 (smoke)")
    assert "| 16 | `lstm_pretrained` | 100 | 69.7 | 71.0 | -1.3 ± " in text and "paired t" in text
    assert "| 16 | 2,000 | 2,000 |" in text  # 3000 tokens in 1.5 s, both recurrences
    curves = json.loads((tmp_path / "out" / "gradient_flow_T16.json").read_text())
    assert len(curves) == 4 and all(len(norms) == 16 and norms[-1] == 0 for norms in curves.values())
    for name in ("lm_loss.png", "gradient_flow_T16.png"):
        assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_blocks_texts_and_arguments(tmp_path):
    tokenizer = train_wordpiece(TEXTS, 120, 64)
    assert blocks_of(tokenizer, TEXTS, 8, 3).shape == (3, 8)
    with pytest.raises(TunekitError, match="texts:"):
        blocks_of(tokenizer, TEXTS[:1], 64, 4)
    path = tmp_path / "texts.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS[:5]))
    assert read_texts(path, 3) == TEXTS[:3]
    with pytest.raises(TunekitError, match="lengths:"):
        PrecisionArguments(study_dirs=["a", "b"], lengths=[256], texts_file=str(path))
    with pytest.raises(TunekitError, match="texts_file:"):
        PrecisionArguments(study_dirs=["a"], lengths=[256], texts_file=str(tmp_path / "missing"))


@pytest.fixture
def language_model() -> LSTMForLanguageModeling:
    torch.manual_seed(0)
    return LSTMForLanguageModeling(LSTMConfig(vocab_size=50, hidden_size=16, dropout=0.0))


def test_norms_per_position_are_causal_and_differ_only_slightly_in_bf16(language_model):
    input_ids = torch.randint(1, 50, (4, 24), generator=torch.Generator().manual_seed(0))
    fp32 = input_gradient_norms(language_model, input_ids, autocast_bf16=False, fp32_recurrence=True)
    bf16 = input_gradient_norms(language_model, input_ids, autocast_bf16=True, fp32_recurrence=False)
    assert len(fp32) == len(bf16) == 24
    # The forward state at T-2 has not read token T-1, so the target's own input gets no gradient.
    assert fp32[-1] == 0 and bf16[-1] == 0
    assert all(value > 0 and math.isfinite(value) for value in fp32[:-1] + bf16[:-1])
    # The nearest input matters most, and bf16 rounding changes the norms without breaking them.
    assert fp32[-2] == max(fp32)
    assert fp32 != bf16
    assert bf16[-2] == pytest.approx(fp32[-2], rel=0.1)
    # The model is left as it was: its own recurrence setting, training mode, no gradients.
    assert language_model.config.fp32_recurrence is True and language_model.training
    assert all(p.grad is None for p in language_model.parameters())


def test_without_autocast_the_bf16_probe_rounds_the_recurrence_and_restores_the_model(language_model):
    input_ids = torch.randint(1, 50, (4, 24), generator=torch.Generator().manual_seed(1))
    fp32 = input_gradient_norms(language_model, input_ids, autocast_bf16=False, fp32_recurrence=True)
    rounded = input_gradient_norms(language_model, input_ids, autocast_bf16=False, fp32_recurrence=False)
    real = input_gradient_norms(language_model, input_ids, autocast_bf16=True, fp32_recurrence=False)
    assert rounded != fp32
    assert rounded[-2] == pytest.approx(fp32[-2], rel=0.1) and rounded[0] == pytest.approx(real[0], rel=0.1)
    assert language_model.config.recurrence_rounding is None and language_model.config.fp32_recurrence


def test_the_probe_refuses_a_classifier_and_a_single_token(language_model, tmp_path):
    classifier = LSTMForSequenceClassification(LSTMConfig(vocab_size=50, hidden_size=8, num_labels=2))
    with pytest.raises(TunekitError, match="model:"):
        input_gradient_norms(
            classifier, torch.ones(1, 4, dtype=torch.long), autocast_bf16=False, fp32_recurrence=True
        )
    with pytest.raises(TunekitError, match="input_ids:"):
        input_gradient_norms(
            language_model, torch.ones(1, 1, dtype=torch.long), autocast_bf16=False, fp32_recurrence=True
        )
    path = tmp_path / "gradient_flow.png"
    plot_gradient_flow(path, {"fp32": [0.5, 0.25, 0.0], "bf16": [0.4, 0.2, 0.0]}, title="smoke")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
