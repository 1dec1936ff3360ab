"""The precision report from what the LSTM study (fp32 and bf16 recurrence) and the transformer
studies (fp32, bf16 autocast) leave on disk; rounded vs real bf16; the host line; and the
gradient-flow probe: one norm per position, causal (the target itself gets none), fp32 vs bf16
recurrence on the same weights, the model left as it was; and its plot."""

import json
import math

import pytest
import torch

from tunekit.data.tokenizer_training import train_wordpiece
from tunekit.errors import TunekitError
from tunekit.models.lstm import LSTMConfig, LSTMForSequenceClassification
from tunekit.models.lstm_lm import LSTMForLanguageModeling
from tunekit.study.lstm_precision import (
    PrecisionArguments,
    blocks_of,
    input_gradient_norms,
    plot_gradient_flow,
    read_texts,
    write_precision_report,
)

TEXTS = [f"the film number {i} was {'good' if i % 2 else 'bad'} and the actors were fine" for i in range(200)]


def write_rows(path, accuracies: dict[str, list[float]], **fields) -> None:
    rows = [
        {"arm": arm, "budget": 100, "seed": seed, "test_accuracy": accuracy, "test_f1": accuracy} | fields
        for arm, values in accuracies.items()
        for seed, accuracy in enumerate(values)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def fake_pretraining(folder, losses: list[float], tokens_per_second: float) -> None:
    """What a pretraining leaves for the report: metrics.jsonl (training and validation loss) and
    results.json (tokens, seconds and the loop's own rate, which the report prefers: a resumed
    pretraining's train_runtime, here ten times too long, counts the time it stood still)."""
    folder.mkdir(parents=True, exist_ok=True)
    records = [{"step": s, "loss": loss + 0.1} for s, loss in zip((1, 2), losses, strict=True)]
    records += [{"step": s, "eval_loss": loss} for s, loss in zip((1, 2), losses, strict=True)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "results.json").write_text(
        json.dumps(
            {
                "tokens_seen": 3000,
                "train_runtime": 30000 / tokens_per_second,
                "tokens_per_second": tokens_per_second,
            }
        )
    )


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
    speed_rows = text.split("### The recurrence alone")[1].split("##")[0]
    (row,) = [line for line in speed_rows.splitlines() if line.startswith("| 16 |")]
    assert all(float(cell.replace(",", "")) > 0 for cell in row.strip("|").split("|")[1:])
    assert text.startswith("# LSTM recurrence: bf16 vs fp32 (smoke)")
    assert (
        "| 16 | LSTM | `lstm_pretrained` | recurrence | 100 | 69.7 | 71.0 | -1.3 ± " in text
        and "paired t" in text
    )
    assert "| 16 | LSTM | 2,000 | 2,000 | 1.00× | — | — | — |" in text  # 3000 tokens in 1.5 s, both
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


def fake_transformer_studies(root, accuracies: dict[str, list[float]]):
    """The transformer study run twice, in fp32 and under bf16 autocast: results and pretraining."""
    fp32, bf16 = root / "T16_transformer_fp32", root / "T16_transformer_bf16"
    for study, precision, losses, speed in (
        (fp32, "no", [6.0, 5.5], 1000.0),
        (bf16, "bf16", [6.1, 5.7], 1500.0),
    ):
        fake_pretraining(study / "pretrain" / "transformer", losses, speed)
        arms = {arm: values for arm, values in accuracies.items() if arm.endswith("_bf16") == (study is bf16)}
        write_rows(
            study / "results.jsonl",
            {arm.removesuffix("_bf16"): v for arm, v in arms.items()},
            mixed_precision=precision,
            wall_time=10.0 if study is fp32 else 8.0,
        )
    return fp32, bf16


def test_the_transformer_joins_the_lstm_table_and_the_rounded_run_is_compared(tmp_path):
    tokenizer = train_wordpiece(TEXTS, 120, 64)
    lstm = fake_study(
        tmp_path / "T16",
        tokenizer,
        {"lstm_pretrained": [0.70, 0.72, 0.71], "lstm_pretrained_bf16": [0.69, 0.70, 0.70]},
    )
    # This run's LSTM ran under bf16 autocast (the fp32 arm keeps only its recurrence in fp32).
    write_rows(
        lstm / "results.jsonl",
        {"lstm_pretrained": [0.70, 0.72, 0.71], "lstm_pretrained_bf16": [0.69, 0.70, 0.70]},
        mixed_precision="bf16",
        wall_time=4.0,
    )
    transformer = fake_transformer_studies(
        tmp_path,
        {"transformer_pretrained": [0.80, 0.82, 0.84], "transformer_pretrained_bf16": [0.81, 0.82, 0.86]},
    )
    rounded = tmp_path / "rounded"
    rounded.mkdir()
    write_rows(
        rounded / "results_T16.jsonl",
        {"lstm_pretrained": [0.60, 0.62, 0.64], "lstm_pretrained_bf16": [0.60, 0.64, 0.66]},
        mixed_precision="no",
    )
    (rounded / "lm_loss.json").write_text(
        json.dumps({"16": {"lstm": {"fp32": {"1": 5.0, "2": 4.9}, "bf16": {"1": 5.1, "2": 4.95}}}})
    )
    (rounded / "gradient_flow_T16.json").write_text(
        json.dumps({"rounded curve": [float(i) for i in range(16)]})
    )
    report = write_precision_report(
        {16: lstm},
        TEXTS,
        tmp_path / "out",
        transformer_studies={16: transformer},
        rounded_report_dir=rounded,
        blocks=2,
        speed_hidden_size=8,
        speed_batch_tokens=64,
    )
    text = report.read_text()
    assert text.startswith("# LSTM vs transformer: bf16 vs fp32")
    accuracy = text.split("## Test accuracy")[1].split("##")[0]
    # One table: the transformer's bf16 study paired with its fp32 study by seed, beside the LSTM.
    assert "| 16 | transformer | `transformer_pretrained` | whole model under bf16 autocast" in accuracy
    assert "| 100 | 83.0 | 82.0 | +1.0 ± 2.5 | paired t |" in accuracy
    assert (
        "| 16 | LSTM | `lstm_pretrained` | recurrence in bf16 (both arms under bf16 autocast) |" in accuracy
    )
    assert "| 100 | 69.7 | 71.0 | -1.3 ± " in accuracy
    # LM loss: both models, both precisions, and the difference at the last step.
    assert (
        "| 16 | transformer MLM (masked tokens) | 1 / 2 | 6.000 / 5.500 | 6.100 / 5.700 | +0.200 (step 2) |"
        in text
    )
    assert "| 16 | LSTM LM (next token) | 3 | 4.800 | 4.800 | +0.000 (step 3) |" in text
    # Speed: 1 000 and 1 500 tokens/s; 10 and 8 s per fine-tuning cell.
    assert "| 16 | transformer | 1,000 | 1,500 | 1.50× | 10.0 | 8.0 | 0.80× |" in text
    # Rounded vs real: the rounded run's difference (+1.3 points) beside this run's (-1.3).
    compared = text.split("## Rounded vs real bf16 (LSTM)")[1].split("## Speed")[0]
    assert "| 16 | `lstm_pretrained` | +1.3 ± 2.9 | -1.3 ± " in compared
    assert "| 62.0 / 63.3 | 71.0 / 69.7 |" in compared
    assert "| 16 | rounded (step 2) | 4.900 | 4.950 | +0.050 |" in compared
    assert "| 16 | real (step 3) | 4.800 | 4.800 | +0.000 |" in compared
    # The rounded curve at distances 1 and 7 (positions 14 and 8), beside this run's four curves.
    assert "| rounded: rounded curve | 1.4e+01 | 8.0e+00 |" in compared
    assert compared.count("| real: LM trained with") == 4
    # The data behind the report, for the next run to compare with.
    out = tmp_path / "out"
    saved = [json.loads(line) for line in (out / "results_T16_transformer.jsonl").read_text().splitlines()]
    assert sorted({row["arm"] for row in saved}) == ["transformer_pretrained", "transformer_pretrained_bf16"]
    assert json.loads((out / "lm_loss.json").read_text())["16"]["transformer"]["bf16"] == {"1": 6.1, "2": 5.7}
    assert (out / "results_T16.jsonl").read_text() == (lstm / "results.jsonl").read_text()
    assert "flags:" in (out / "host.txt").read_text()


def test_transformer_and_rounded_arguments_are_checked(tmp_path):
    path = tmp_path / "texts.jsonl"
    path.write_text(json.dumps({"text": "a"}) + "\n")
    with pytest.raises(TunekitError, match="transformer_dirs:"):
        PrecisionArguments(study_dirs=["a"], lengths=[256], transformer_dirs=["f"], texts_file=str(path))
    with pytest.raises(TunekitError, match="rounded_report_dir:"):
        PrecisionArguments(
            study_dirs=["a"], lengths=[256], rounded_report_dir=str(tmp_path / "nope"), texts_file=str(path)
        )
    args = PrecisionArguments(
        study_dirs=["a", "b"],
        lengths=[256, 512],
        transformer_dirs=["f1", "b1", "f2", "b2"],
        texts_file=str(path),
    )
    assert {t: (f.name, b.name) for t, (f, b) in args.transformer_studies().items()} == {
        256: ("f1", "b1"),
        512: ("f2", "b2"),
    }


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
