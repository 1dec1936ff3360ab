"""The CPU fallbacks of every CUDA-only branch (the CUDA branches run on a GPU machine)."""

import torch
from accelerate.utils import is_compiled_module
from transformers import BertConfig, BertForMaskedLM

from tunekit.config import TrainArguments
from tunekit.training.accelerator import make_accelerator, plain_model
from tunekit.training.precision import configure_matmul, resolve_mixed_precision
from tunekit.training.step import build_optimizer


def tiny_bert() -> BertForMaskedLM:
    config = BertConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    return BertForMaskedLM(config)


def test_adamw_is_torch_default_on_cpu_and_keeps_norms_and_biases_undecayed(tmp_path):
    optimizer = build_optimizer(tiny_bert(), TrainArguments(output_dir=str(tmp_path)))
    assert not optimizer.defaults["fused"] and optimizer.defaults["foreach"] is None
    decay, no_decay = optimizer.param_groups
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    assert no_decay["weight_decay"] == 0.0


def test_tf32_is_left_alone_on_cpu():
    before = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        configure_matmul(torch.device("cpu"))
        assert torch.backends.cuda.matmul.allow_tf32 is False
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def test_auto_precision_is_fp32_on_cpu_and_yields_to_accelerate_launch(monkeypatch):
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    assert resolve_mixed_precision("auto", use_cpu=True) == "no"
    assert resolve_mixed_precision("bf16", use_cpu=True) == "bf16"
    assert resolve_mixed_precision(None, use_cpu=True) is None
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    assert resolve_mixed_precision("auto", use_cpu=False) == "fp16"


def test_compiled_model_state_has_no_compile_prefix(tmp_path):
    """`--torch_compile` wraps the model in `prepare`; what is saved or read is the plain model.
    (The compiled graph is never run here: compiling is slow and needs a C compiler.)"""
    args = TrainArguments(output_dir=str(tmp_path), use_cpu=True, torch_compile=True, report_to="none")
    accelerator = make_accelerator(args)
    model = accelerator.prepare(tiny_bert())
    assert is_compiled_module(model)
    assert any(key.startswith("_orig_mod.") for key in accelerator.unwrap_model(model).state_dict())
    plain = plain_model(accelerator, model)
    assert type(plain) is BertForMaskedLM and set(plain.state_dict()) == set(tiny_bert().state_dict())
    plain.save_pretrained(tmp_path / "saved")
    assert BertForMaskedLM.from_pretrained(tmp_path / "saved").config.vocab_size == 64


def test_a_compiled_runs_checkpoint_has_plain_keys_and_resumes_an_eager_run(tmp_path):
    """accelerate checkpoints the model it registered before compiling it, so a compiled run's
    checkpoint carries no `_orig_mod.` keys and an eager run resumes from it. (As above, the
    compiled graph itself never runs.)"""
    from safetensors.torch import load_file

    from tunekit.training.checkpoint import Progress, save_checkpoint

    compiled_args = TrainArguments(
        output_dir=str(tmp_path), use_cpu=True, torch_compile=True, report_to="none"
    )
    compiled = make_accelerator(compiled_args)
    model = compiled.prepare(tiny_bert())
    assert is_compiled_module(model)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.5)  # weights a fresh model does not have
    checkpoint = save_checkpoint(compiled, tmp_path, Progress(global_step=3), limit=2)
    saved_keys = set(load_file(checkpoint / "model.safetensors"))
    assert saved_keys and saved_keys <= set(tiny_bert().state_dict())

    eager = make_accelerator(
        TrainArguments(output_dir=str(tmp_path / "eager"), use_cpu=True, report_to="none")
    )
    resumed = eager.prepare(tiny_bert())
    eager.load_state(str(checkpoint))
    expected = plain_model(compiled, model).state_dict()
    for key, value in resumed.state_dict().items():
        torch.testing.assert_close(value, expected[key], msg=key)  # tied decoder weight included


def underflows_to_zero() -> bool:
    subnormal = torch.tensor([1e-40], dtype=torch.float32)  # below float32's smallest normal, 1.2e-38
    return bool((subnormal * 1.0).item() == 0.0)


def test_flush_denormal_is_set_per_run_on_cpu(tmp_path):
    try:
        make_accelerator(TrainArguments(output_dir=str(tmp_path), use_cpu=True, flush_denormal=True))
        assert underflows_to_zero()
        # The next run in the same process (a study's next cell) gets its own setting back.
        make_accelerator(TrainArguments(output_dir=str(tmp_path), use_cpu=True))
        assert not underflows_to_zero()
    finally:
        torch.set_flush_denormal(False)
