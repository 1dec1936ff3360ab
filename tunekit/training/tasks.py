"""What the scripts run: MLM pretraining and sequence-classification fine-tuning.

Each function goes recipe -> data -> tokenizer -> model -> the one loop -> a self-describing
output directory: the model and tokenizer (`from_pretrained` loads them), `recipe.yaml`,
`metrics.jsonl` and `results.json`.
"""

import logging
import platform
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from datasets import Dataset
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from tunekit.atomic import atomic_write_json
from tunekit.config import DataArguments, ModelArguments, TrainArguments, recipe_dict, save_recipe
from tunekit.data.collators import padding_collator, pretraining_collator
from tunekit.data.document_words import (
    DocumentWordsCollator,
    inverse_document_frequency,
    tokenize_documents,
)
from tunekit.data.sampling import eval_dataloader, loader_options, train_dataloader
from tunekit.data.sources import load_raw
from tunekit.data.splits import Splits, prepare_splits
from tunekit.data.static_shapes import wants_static_shapes
from tunekit.data.tokenization import load_tokenizer, tokenize_and_pack, tokenize_for_classification
from tunekit.data.tokenizer_training import train_byte_level_bpe, train_wordpiece
from tunekit.errors import TunekitError
from tunekit.hub.card import framework_versions, write_model_card
from tunekit.hub.push import push_output_dir, target_from_args
from tunekit.models.build import build_classifier, build_pretraining_model, count_parameters
from tunekit.models.lora import apply_lora, is_lora, parameter_counts, save_lora
from tunekit.training.accelerator import make_accelerator, plain_model
from tunekit.training.document_words import TASK as DBOW_TASK
from tunekit.training.document_words import build_document_words, document_words_of
from tunekit.training.evaluation import evaluate_model
from tunekit.training.fsdp import save_whole_model
from tunekit.training.loop import LoopResult, train_loop
from tunekit.training.metrics import classification_metrics
from tunekit.training.preflight import check_model_fits, check_run, save_run_recipe
from tunekit.training.rtd import TASK as RTD_TASK
from tunekit.training.rtd import (
    build_replaced_token_detection,
    detection_results,
    replaced_token_detection_of,
    save_replaced_token_detection,
)
from tunekit.training.run_lock import empty_output_dir, holds_output_dir_lock
from tunekit.training.summary import log_run_summary
from tunekit.training.teardown import release_training_state

logger = logging.getLogger(__name__)


def prepare_output_dir(args: TrainArguments, accelerator: Accelerator) -> Path:
    """Create output_dir, or empty it when asked to overwrite (check_run has refused every other
    non-empty one, on every process, before any process deletes anything)."""
    output_dir = Path(args.output_dir)
    replace = args.overwrite_output_dir and not args.resume_from_checkpoint
    if accelerator.is_main_process and replace and output_dir.is_dir():
        empty_output_dir(output_dir)
    accelerator.wait_for_everyone()
    output_dir.mkdir(parents=True, exist_ok=True)
    return output_dir


def get_tokenizer(
    model_args: ModelArguments,
    data_args: DataArguments,
    texts: Dataset,
    output_dir: Path,
    accelerator: Accelerator,
) -> PreTrainedTokenizerBase:
    """Load the named tokenizer, or the init model's, or train one (main process; others load it)."""
    source = model_args.tokenizer_name_or_path or model_args.model_name_or_path
    if source:
        field = "tokenizer_name_or_path" if model_args.tokenizer_name_or_path else "model_name_or_path"
        return load_tokenizer(source, field, trust_remote_code=model_args.trust_remote_code)
    if accelerator.is_main_process:
        train_tokenizer = train_byte_level_bpe if model_args.is_decoder else train_wordpiece
        tokenizer = train_tokenizer(
            texts,
            model_args.vocab_size,
            model_args.max_position_embeddings,
            data_args.text_column,
            model_args.tokenizer_training_chars,
        )
        tokenizer.save_pretrained(output_dir)
    accelerator.wait_for_everyone()
    return tokenizer if accelerator.is_main_process else load_tokenizer(str(output_dir))


def _save_model(
    accelerator: Accelerator,
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    output_dir: Path,
    model_args: ModelArguments,
) -> None:
    """Every process calls it: a whole model's weights are gathered from all of them (FSDP shards
    them); a LoRA adapter is written by the main process alone."""
    if replaced_token_detection_of(model) is not None:  # discriminator + generator/ (tunekit.rtd)
        save_replaced_token_detection(accelerator, model, tokenizer, output_dir)
    elif (document_words := document_words_of(model)) is not None:  # the stock masked LM inside
        save_whole_model(accelerator, document_words.masked_lm, tokenizer, output_dir)
    elif not is_lora(model):
        save_whole_model(accelerator, model, tokenizer, output_dir)
    elif accelerator.is_main_process:
        tokenizer.save_pretrained(output_dir)
        save_lora(model, output_dir, model_args, tokenizer)


def _finish(
    accelerator: Accelerator,
    loop: LoopResult,
    tokenizer: PreTrainedTokenizerBase,
    started: float,
    configs: tuple[ModelArguments, DataArguments, TrainArguments],
    output_dir: Path,
    extra: dict[str, Any],
) -> dict[str, Any]:
    model = plain_model(accelerator, loop.model)
    train_args = configs[2]
    results = {
        **extra,
        **loop.final_metrics,
        "train_loss": loop.train_loss,
        "global_step": loop.progress.global_step,
        "epochs": loop.progress.epoch,
        "tokens_seen": loop.progress.tokens_seen,
        "train_runtime": round(loop.progress.train_runtime, 2),
        "wall_time": round(time.perf_counter() - started, 2),
        "num_parameters": count_parameters(model),
        **parameter_counts(model),
        # PaLM model FLOPs (tunekit.training.flops): flops_per_token x the tokens trained in this run's steps.
        "train_flops": loop.throughput["flops_per_token"] * loop.progress.tokens_seen,
        **loop.throughput,
        "mixed_precision": accelerator.mixed_precision,
        "num_processes": accelerator.num_processes,
        "device": str(accelerator.device),
        "machine": f"{platform.machine()} {torch.get_num_threads()} threads",
        "framework_versions": framework_versions(uses_peft=is_lora(model)),
    }
    if loop.progress.schedule_extensions:
        results["schedule_extensions"] = loop.progress.schedule_extensions
    accelerator.wait_for_everyone()
    if train_args.save_model:  # results.json, written after the model, marks the run done
        _save_model(accelerator, model, tokenizer, output_dir, configs[0])
    if accelerator.is_main_process:
        save_recipe(output_dir / "recipe.yaml", *configs)
        atomic_write_json(output_dir / "results.json", results)
        write_model_card(output_dir, train_args.hub_model_id if train_args.push_to_hub else None)
    is_main_process = accelerator.is_main_process
    # Every process has saved its part before any lets go of the model; the process group itself is
    # destroyed after this run's frames are gone (tunekit.training.teardown, in the order that cannot hang).
    accelerator.wait_for_everyone()
    release_training_state(accelerator)
    pushed_url = None
    if train_args.push_to_hub and is_main_process:
        pushed_url = push_output_dir(output_dir, target_from_args(train_args, output_dir))
    if is_main_process:
        log_run_summary(results, output_dir, pushed_url)
    return results


def _start_run(
    model_args: ModelArguments, data_args: DataArguments, train_args: TrainArguments, labeled: bool
) -> tuple[Accelerator, Splits, Path]:
    """What every run does before its task's own work, in this order: check everything (nothing is
    written before), seed, load and split the data (main process first: it fills the cache), then
    create the output dir."""
    accelerator = make_accelerator(train_args)
    check_run(model_args, data_args, train_args, accelerator)
    set_seed(train_args.seed)
    with accelerator.main_process_first():
        splits = prepare_splits(load_raw(data_args), data_args, train_args.seed, labeled=labeled)
    return accelerator, splits, prepare_output_dir(train_args, accelerator)


@holds_output_dir_lock
def run_pretraining(model_args: ModelArguments, data_args: DataArguments, train_args: TrainArguments) -> dict:
    """Pretraining on packed blocks of the training text: masked LM for encoders (or replaced-token
    detection), causal LM for decoders, a bidirectional language model for the LSTM; or, for
    `objective: dbow`, on one window per document (`train_blocks` then counts documents)."""
    if model_args.use_lora:
        raise TunekitError("use_lora: LoRA is for fine-tuning; pretraining trains every weight")
    started = time.perf_counter()
    accelerator, splits, output_dir = _start_run(model_args, data_args, train_args, labeled=False)
    with accelerator.main_process_first():
        tokenizer = get_tokenizer(model_args, data_args, splits.train, output_dir, accelerator)
        if model_args.is_replaced_token_detection:
            model = build_replaced_token_detection(model_args, tokenizer)
        elif model_args.is_document_words:
            model = build_document_words(model_args, tokenizer)
        else:
            model = build_pretraining_model(model_args, tokenizer)
        check_model_fits(model, tokenizer, model_args)
        common = {
            "tokenizer": tokenizer,
            "text_column": data_args.text_column,
            "num_proc": data_args.preprocessing_num_workers,
            "load_from_cache": not data_args.overwrite_cache,
        }
        # dbow reads one document per row (its opening window, the rest as targets); the others
        # read packed blocks.
        if model_args.is_document_words:
            pack = partial(tokenize_documents, **common, max_length=data_args.max_seq_length)
        else:
            pack = partial(tokenize_and_pack, **common, block_size=data_args.max_seq_length)
        train_blocks, eval_blocks = pack(splits.train), pack(splits.validation)
    static = wants_static_shapes(train_args.torch_compile, accelerator.device)
    if model_args.is_document_words:  # targets weighted by the training documents' idf, in both loaders
        idf = inverse_document_frequency(train_blocks, model.config.vocab_size)
        collate = partial(DocumentWordsCollator, tokenizer, idf)
    else:
        collate = partial(
            pretraining_collator, model_args, tokenizer, data_args.mlm_probability, train_args.seed, static
        )
    # Separate collators: the training one re-masks every epoch, validation keeps fixed masks so
    # its loss is comparable from one evaluation to the next.
    # With static shapes the short last batch of an epoch would be one more shape (a recompile under
    # torch.compile): it is dropped, less than one batch of blocks per epoch, when a batch remains.
    step_blocks = train_args.per_device_train_batch_size * accelerator.num_processes
    train_loader = DataLoader(
        train_blocks,
        **loader_options(train_args, accelerator.device),
        batch_size=train_args.per_device_train_batch_size,
        shuffle=True,
        collate_fn=collate(),
        drop_last=static and len(train_blocks) >= step_blocks,
    )
    eval_loader = DataLoader(
        eval_blocks,
        **loader_options(train_args, accelerator.device),
        batch_size=train_args.per_device_eval_batch_size,
        collate_fn=collate(),
    )
    save_run_recipe(output_dir, accelerator, model_args, data_args, train_args)
    recipe = recipe_dict(model_args, data_args, train_args)
    loop = train_loop(model, train_loader, eval_loader, train_args, accelerator, recipe=recipe)
    extra = {
        "task": "language-model"
        if model_args.is_lstm
        else "causal-lm"
        if model_args.is_decoder
        else RTD_TASK
        if model_args.is_replaced_token_detection
        else DBOW_TASK
        if model_args.is_document_words
        else "masked-lm",
        "pretraining_texts_dropped_as_test_copies": splits.dropped_test_copies,
        "model_type": model_args.model_type,
        "train_blocks": len(train_blocks),
        "block_size": data_args.max_seq_length,
    }
    if model_args.is_replaced_token_detection:
        extra |= detection_results(loop.model, model_args)
    if model_args.is_document_words:
        extra |= {"objective": "dbow", "target_words_with_weight": int((idf > 0).sum())}
    return _finish(
        accelerator, loop, tokenizer, started, (model_args, data_args, train_args), output_dir, extra
    )


@holds_output_dir_lock
def run_finetuning(model_args: ModelArguments, data_args: DataArguments, train_args: TrainArguments) -> dict:
    """Sequence classification: a transformer from a pretrained dir or from scratch, or the LSTM."""
    started = time.perf_counter()
    accelerator, splits, output_dir = _start_run(model_args, data_args, train_args, labeled=True)
    label_names = splits.train.features[data_args.label_column].names
    with accelerator.main_process_first():
        tokenizer = get_tokenizer(model_args, data_args, splits.train, output_dir, accelerator)
        model = build_classifier(model_args, tokenizer, label_names)
        check_model_fits(model, tokenizer, model_args)
        if model_args.use_lora:
            model = apply_lora(model, model_args)
        encode = partial(
            tokenize_for_classification,
            tokenizer=tokenizer,
            text_column=data_args.text_column,
            label_column=data_args.label_column,
            max_length=data_args.max_seq_length,
            num_proc=data_args.preprocessing_num_workers,
            load_from_cache=not data_args.overwrite_cache,
        )
        train_set, eval_set = encode(splits.train), encode(splits.validation)
        test_set = encode(splits.test) if splits.test is not None else None
    # Under torch.compile every new padded length is a recompile (or a shape-generic graph): lengths
    # come in buckets of 64. Eager, on CUDA too, a length costs nothing to change (masked attention
    # runs without cuDNN's per-shape graphs there, `attention_masks`), so the tighter padding stays;
    # and the LSTM packs its rows by length anyway.
    buckets = train_args.torch_compile and not model_args.is_lstm
    collator = padding_collator(
        tokenizer,
        accelerator.mixed_precision,
        with_lengths=model_args.is_lstm,
        length_buckets=buckets,
        max_length=data_args.max_seq_length,
    )
    device = accelerator.device
    train_loader = train_dataloader(train_set, collator, train_args, accelerator.num_processes, device)
    metric_fn = partial(classification_metrics, num_labels=len(label_names))
    save_run_recipe(output_dir, accelerator, model_args, data_args, train_args)
    loop = train_loop(
        model,
        train_loader,
        eval_dataloader(eval_set, collator, train_args, device),
        train_args,
        accelerator,
        metric_fn,
        recipe=recipe_dict(model_args, data_args, train_args),
    )
    extra: dict[str, Any] = {
        "task": "sequence-classification",
        "model_type": model_args.model_type,
        "init": model_args.model_name_or_path or "scratch",
        "train_examples": len(train_set),
        "labels": label_names,
    }
    if test_set is not None:
        test_loader = accelerator.prepare(eval_dataloader(test_set, collator, train_args, device))
        # The test split is touched once, after training and model selection on validation.
        extra |= evaluate_model(loop.model, test_loader, accelerator, metric_fn, prefix="test")
    return _finish(
        accelerator, loop, tokenizer, started, (model_args, data_args, train_args), output_dir, extra
    )
