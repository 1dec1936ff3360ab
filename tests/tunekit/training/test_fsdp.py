"""FSDP2 wrapping: the layers get their own shard groups, the input embedding's holder does not."""

import types

import pytest
import torch
import torch.distributed as dist
from accelerate.utils import FullyShardedDataParallelPlugin
from accelerate.utils.fsdp_utils import fsdp2_prepare_model
from transformers import BertConfig, BertForMaskedLM, ModernBertConfig, ModernBertForMaskedLM

from tests.conftest import TWO_LAYERS
from tunekit.models.lstm import LSTMConfig, LSTMForSequenceClassification
from tunekit.training.fsdp import layers_to_wrap

SPECIAL = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "cls_token_id": 1, "sep_token_id": 2}


def modernbert() -> ModernBertForMaskedLM:
    return ModernBertForMaskedLM(ModernBertConfig(vocab_size=300, **TWO_LAYERS, **SPECIAL))


def test_the_class_holding_the_input_embedding_is_not_wrapped():
    model = modernbert()
    assert "ModernBertEmbeddings" in model._no_split_modules
    assert layers_to_wrap(model) == ["ModernBertEncoderLayer"]
    bert = BertForMaskedLM(BertConfig(vocab_size=300, **TWO_LAYERS))
    assert layers_to_wrap(bert) == ["BertLayer"]  # BertEmbeddings holds the input embedding too
    lstm = LSTMForSequenceClassification(LSTMConfig(vocab_size=300, hidden_size=16))
    assert layers_to_wrap(lstm) is None  # nothing to change


@pytest.fixture
def single_process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def shard_on_one_process(model: torch.nn.Module) -> tuple[torch.nn.Module, types.SimpleNamespace]:
    """FSDP2 through accelerate's own preparation, with tunekit's layers, and the parts of an
    Accelerator that preparing and saving read (accelerate's get_state_dict itself)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedType

    plugin = FullyShardedDataParallelPlugin(
        fsdp_version=2, auto_wrap_policy="transformer_based_wrap", cpu_ram_efficient_loading=False
    )
    plugin.transformer_cls_names_to_wrap = layers_to_wrap(model)
    accelerator = types.SimpleNamespace(
        state=types.SimpleNamespace(fsdp_plugin=plugin),
        device=torch.device("cpu"),
        is_main_process=True,
        mixed_precision="no",
        distributed_type=DistributedType.FSDP,
        is_fsdp2=True,
        save=torch.save,
    )
    accelerator.get_state_dict = types.MethodType(Accelerator.get_state_dict, accelerator)
    return fsdp2_prepare_model(accelerator, model), accelerator


def test_accelerate_shards_modernbert_with_these_layers_on_one_cpu_process(single_process_group):
    # With the model's own _no_split_modules, accelerate 1.15 shards the embedding twice and torch
    # fails ("Invariant encountered"): what recipes/accelerate/fsdp.yaml hit on the H200.
    sharded, _ = shard_on_one_process(modernbert())
    logits = sharded(input_ids=torch.randint(3, 300, (2, 8))).logits
    assert logits.shape == (2, 8, 300) and torch.isfinite(logits).all()


def test_the_loop_sets_the_layers_only_under_fsdp_and_only_when_the_recipe_names_none():
    from accelerate.utils import DistributedType

    from tunekit.training.fsdp import configure_fsdp_wrapping

    def accelerator(kind: DistributedType, names: list[str] | None) -> types.SimpleNamespace:
        plugin = types.SimpleNamespace(transformer_cls_names_to_wrap=names)
        return types.SimpleNamespace(distributed_type=kind, state=types.SimpleNamespace(fsdp_plugin=plugin))

    fsdp = accelerator(DistributedType.FSDP, None)
    configure_fsdp_wrapping(fsdp, modernbert())
    assert fsdp.state.fsdp_plugin.transformer_cls_names_to_wrap == ["ModernBertEncoderLayer"]
    chosen = accelerator(DistributedType.FSDP, ["ModernBertEmbeddings", "ModernBertEncoderLayer"])
    configure_fsdp_wrapping(chosen, modernbert())
    assert chosen.state.fsdp_plugin.transformer_cls_names_to_wrap[0] == "ModernBertEmbeddings"
    ddp = accelerator(DistributedType.MULTI_GPU, None)
    configure_fsdp_wrapping(ddp, modernbert())
    assert ddp.state.fsdp_plugin.transformer_cls_names_to_wrap is None


def test_a_sharded_model_is_saved_whole_and_loads_with_plain_transformers(single_process_group, tmp_path):
    # save_pretrained on the sharded parameters fails in safetensors ("invalid python storage"),
    # how recipes/accelerate/fsdp.yaml's save failed on the H200; the gathered weights save.
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from tunekit.data.tokenizer_training import train_wordpiece
    from tunekit.training.fsdp import save_whole_model

    model = modernbert()
    original = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    sharded, accelerator = shard_on_one_process(model)
    assert any(type(parameter).__name__ == "DTensor" for parameter in sharded.parameters())
    tokenizer = train_wordpiece(["a sharded model saved whole"] * 4, vocab_size=60, model_max_length=16)
    save_whole_model(accelerator, sharded, tokenizer, tmp_path / "saved")
    loaded = AutoModelForMaskedLM.from_pretrained(tmp_path / "saved")
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, original[name]), name
    assert AutoTokenizer.from_pretrained(tmp_path / "saved").vocab_size == tokenizer.vocab_size
