import pytest

from tunekit.benchmark.presets import PRESETS, get_preset
from tunekit.benchmark.trainer_comparison import check_preset
from tunekit.benchmark.trainer_legs import group_texts, trainer_optim
from tunekit.errors import TunekitError


def test_overrides_replace_every_cases_step_counts():
    preset = get_preset("cpu", warmup_steps=1, steps=4)
    assert {(c.warmup_steps, c.steps) for c in preset.cases} == {(1, 4)}
    assert PRESETS["cpu"].cases[0].steps == 30  # the stored preset is unchanged


def test_bad_preset_and_step_counts_name_the_field():
    with pytest.raises(TunekitError, match="preset: unknown 'tpu'"):
        get_preset("tpu")
    with pytest.raises(TunekitError, match="steps must be positive"):
        get_preset("cpu", steps=0)


def test_fine_tuning_window_must_fit_in_the_first_epochs_full_batches():
    for name in PRESETS:
        check_preset(get_preset(name))
    with pytest.raises(TunekitError, match="warmup_steps \\+ steps <= 4"):
        check_preset(get_preset("smoke", steps=4))


def test_gpu_preset_covers_bert_base_and_the_imdb_encoder_with_and_without_compile():
    cases = {(c.task, c.encoder.label, c.seq_len, c.precision, c.compile) for c in PRESETS["gpu"].cases}
    for compiled in (False, True):
        assert ("pretraining", "12x768", 512, "bf16", compiled) in cases
        assert ("pretraining", "4x256", 256, "bf16", compiled) in cases


def test_group_texts_cuts_the_concatenation_into_full_blocks_like_run_mlm():
    examples = {"input_ids": [[1, 2, 3], [4, 5], [6, 7, 8, 9]], "attention_mask": [[1] * 3, [1] * 2, [1] * 4]}
    blocks = group_texts(examples, block_size=4)
    assert blocks["input_ids"] == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert blocks["attention_mask"] == [[1] * 4, [1] * 4]


def test_the_trainer_gets_tunekits_adamw_implementation():
    assert trainer_optim({"fused": True}) == "adamw_torch_fused"
    assert trainer_optim({"fused": False, "foreach": None}) == "adamw_torch"
