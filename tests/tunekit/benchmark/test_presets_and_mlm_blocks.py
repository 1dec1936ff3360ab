from dataclasses import replace

import pytest

from tunekit.benchmark.presets import PRESETS, TINY, finetuning_case, get_preset
from tunekit.benchmark.trainer_comparison import check_preset
from tunekit.benchmark.trainer_legs import group_texts, trainer_optim
from tunekit.errors import TunekitError


def test_overrides_replace_the_pretraining_step_counts_only():
    preset = get_preset("cpu", warmup_steps=1, steps=4)
    pretraining, finetuning = preset.cases
    assert (pretraining.warmup_steps, pretraining.steps) == (1, 4)
    assert (finetuning.warmup_steps, finetuning.steps) == (16, 16)  # one epoch warm-up, one timed
    assert PRESETS["cpu"].cases[0].steps == 30  # the stored preset is unchanged
    smaller = get_preset("cpu", finetuning_examples=32)
    assert smaller.finetuning_examples == 32
    assert (smaller.cases[1].warmup_steps, smaller.cases[1].steps) == (4, 4)


def test_cases_can_be_chosen_by_task_and_compile_mode():
    eager = get_preset("gpu", compile_modes=(False,))
    assert len(eager.cases) == 3 and not any(case.compile for case in eager.cases)
    compiled_pretraining = get_preset("gpu", tasks=("pretraining",), compile_modes=(True,))
    assert {(c.task, c.compile) for c in compiled_pretraining.cases} == {("pretraining", True)}
    with pytest.raises(TunekitError, match="no case left"):
        get_preset("cpu", compile_modes=(True,))


def test_bad_preset_and_step_counts_name_the_field():
    with pytest.raises(TunekitError, match="preset: unknown 'tpu'"):
        get_preset("tpu")
    with pytest.raises(TunekitError, match="steps must be positive"):
        get_preset("cpu", steps=0)


def test_fine_tuning_times_exactly_its_second_epoch():
    for name in PRESETS:
        check_preset(get_preset(name))
    preset = get_preset("smoke")
    broken = replace(preset, cases=(replace(preset.cases[1], steps=1),))
    with pytest.raises(TunekitError, match="warm up for one epoch and time the next \\(2 steps of 8"):
        check_preset(broken)
    with pytest.raises(TunekitError, match="must be a multiple of the batch"):
        finetuning_case(TINY, 64, 8, "no", 20)


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
