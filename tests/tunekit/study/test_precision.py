"""The LSTM precision report from what two LSTM studies (fp32 and bf16 recurrence) leave on disk."""

import json

import pytest
import torch

from tunekit.data.tokenizer_training import train_wordpiece
from tunekit.errors import TunekitError
from tunekit.models.lstm import LSTMConfig
from tunekit.models.lstm_lm import LSTMForLanguageModeling
from tunekit.study.precision import PrecisionArguments, blocks_of, read_texts, write_precision_report

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
