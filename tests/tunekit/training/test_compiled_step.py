"""The compiled MLM step: one graph, no break, no recompilation, the eager losses (CPU, inductor)."""

import json

import pytest
import torch

from tunekit.config import parse_recipe
from tunekit.training.compile_stats import CompileWatch
from tunekit.training.tasks import run_pretraining

# fp32 on a CPU: inductor fuses and reorders the same arithmetic, so the losses agree to rounding,
# which 20 AdamW steps amplify a little (largest relative difference seen: 8.5e-8).
LOSS_RTOL = 1e-5


def step_losses(output_dir) -> list[float]:
    records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    return [record["loss"] for record in records if "loss" in record]


@pytest.mark.slow
def test_compiled_mlm_step_compiles_once_and_trains_as_eager(pretrain_argv, tmp_path):
    eager_dir, compiled_dir = tmp_path / "eager", tmp_path / "compiled"
    # A constant learning rate, so that a 20-step and a 50-step run take the same first 20 steps.
    schedule = ["--lr_scheduler_type", "constant_with_warmup", "--warmup_ratio", "0"]
    common = [*pretrain_argv, *schedule, "--logging_steps", "1", "--eval_steps", "0", "--save_steps", "0"]
    run_pretraining(*parse_recipe([*common, "--max_steps", "20", "--output_dir", str(eager_dir)]))
    compiled_argv = [
        *common,
        "--max_steps",
        "50",
        "--torch_compile",
        "true",
        "--output_dir",
        str(compiled_dir),
    ]
    results = run_pretraining(*parse_recipe(compiled_argv))
    # The tiny recipe's ModernBERT: the hooks of the masked-only head, the last layer's rows-only
    # forward and tunekit's attention all trace into the one graph.
    assert results["compile_graph_breaks"] == 0, results["compile_graph_break_reasons"]
    assert results["compile_graphs"] == 1 and results["compile_recompiles"] == 0, results
    saved = json.loads((compiled_dir / "results.json").read_text())
    assert saved["compile_recompiles"] == 0 and saved["compile_graph_breaks"] == 0
    eager, compiled = step_losses(eager_dir), step_losses(compiled_dir)
    assert len(eager) == 20 and len(compiled) == 50
    torch.testing.assert_close(compiled[:20], eager, rtol=LOSS_RTOL, atol=0.0)


def test_compile_watch_counts_breaks_and_recompiles_since_it_started():
    torch._dynamo.reset()

    def with_break(x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        torch._dynamo.graph_break()
        return y + 1

    compiled = torch.compile(with_break, backend="eager", dynamic=False)
    watch = CompileWatch()
    compiled(torch.ones(3))
    compiled(torch.ones(3))  # cached: no new graph
    compiled(torch.ones(4))  # a new shape: each side of the break recompiles
    report = watch.report()
    assert report["compile_graph_breaks"] >= 1 and report["compile_graph_break_reasons"]
    assert report["compile_graphs"] == 4 and report["compile_recompiles"] == 2
    assert any("size" in reason for reason in report["compile_recompile_reasons"])
    assert CompileWatch().report()["compile_graphs"] == 0  # a later run starts from zero


@pytest.mark.parametrize("model_type", ["bert", "modernbert"])
@pytest.mark.parametrize("task", ["masked-lm", "first-token classifier"])
def test_tunekit_hooks_and_cuda_attention_trace_into_one_graph(model_type, task, monkeypatch):
    """The suspects of a graph break: the masked-only head's hooks (mlm_head), the last layer's
    replaced forward (last_layer) and, on CUDA, the masked attention's sdpa_kernel
    (attention_masks), here forced on the CPU. Padded batches whose padding moves, 3 steps: one
    graph (the first-token classifier's hooks run outside it), compiled once."""
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoModelForSequenceClassification

    import tunekit.models.attention_masks as attention_masks
    from tunekit.data.static_shapes import MASKED_LABELS, static_masked_batch_keys
    from tunekit.models.cpu_dropout import install_cpu_dropout
    from tunekit.models.last_layer import install_first_token_last_layer
    from tunekit.models.mlm_head import install_masked_only_head

    monkeypatch.setattr(
        attention_masks,
        "masked_attention_backends",
        lambda query, mask: attention_masks.WITHOUT_CUDNN if mask is not None else None,
    )
    special = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "cls_token_id": 1, "sep_token_id": 2}
    extra = (
        {**special, "local_attention": 16, "classifier_pooling": "cls"} if model_type == "modernbert" else {}
    )
    config = AutoConfig.for_model(
        model_type,
        vocab_size=128,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=2,
        **extra,
    )
    masked_lm = task == "masked-lm"
    torch.manual_seed(0)
    model = (AutoModelForMaskedLM if masked_lm else AutoModelForSequenceClassification).from_config(config)
    assert install_masked_only_head(model) if masked_lm else install_first_token_last_layer(model)
    attention_masks.install_known_padding_masks(model)
    attention_masks.skip_pad_token_search(model)
    install_cpu_dropout(model)
    torch._dynamo.reset()  # transformers' forward wrappers are shared between model classes
    compiled = torch.compile(model.train(), backend="aot_eager")
    watch = CompileWatch()
    generator = torch.Generator().manual_seed(0)
    for step in range(3):
        input_ids = torch.randint(5, 128, (4, 32), generator=generator)
        attention_mask = torch.ones_like(input_ids)
        attention_mask[1, 20 + step :] = 0
        keys = {}
        if masked_lm:
            chosen = torch.rand(input_ids.shape, generator=generator) < 0.15
            keys = static_masked_batch_keys(torch.where(chosen, input_ids, -100), 0.15)
            keys.pop(MASKED_LABELS)
        compiled(input_ids=input_ids, attention_mask=attention_mask, **keys).logits.sum().backward()
    report = watch.report()
    assert report["compile_graph_breaks"] == 0, report["compile_graph_break_reasons"]
    assert report["compile_graphs"] == 1 and report["compile_recompiles"] == 0, report


def test_the_windowed_local_attention_of_packed_blocks_compiles_into_the_one_graph():
    """Unpadded blocks: ModernBERT's sliding-window layers run `local_attention` (no mask built),
    the rows-only last layer (a sliding one here) its band; still one graph, compiled once."""
    from transformers import AutoConfig, AutoModelForMaskedLM

    from tunekit.data.static_shapes import MASKED_LABELS, static_masked_batch_keys
    from tunekit.models.attention_masks import install_known_padding_masks
    from tunekit.models.mlm_head import install_masked_only_head

    special = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "cls_token_id": 1, "sep_token_id": 2}
    config = AutoConfig.for_model(
        "modernbert",
        vocab_size=128,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        local_attention=16,
        **special,
    )
    torch.manual_seed(0)
    model = AutoModelForMaskedLM.from_config(config).train()
    assert install_masked_only_head(model) and install_known_padding_masks(model)
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager")
    watch = CompileWatch()
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        input_ids = torch.randint(5, 128, (4, 48), generator=generator)
        chosen = torch.rand(input_ids.shape, generator=generator) < 0.15
        keys = static_masked_batch_keys(torch.where(chosen, input_ids, -100), 0.15)
        keys.pop(MASKED_LABELS)
        compiled(input_ids=input_ids, **keys).logits.sum().backward()
    report = watch.report()
    assert report["compile_graph_breaks"] == 0, report["compile_graph_break_reasons"]
    assert report["compile_graphs"] == 1 and report["compile_recompiles"] == 0, report
