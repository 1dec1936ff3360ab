"""The pretraining-advantage study: {transformer, LSTM} x {pretrained, scratch} x label budgets x seeds.

One tokenizer is trained on the pretraining text and shared by every arm. Each arm's
pretraining runs once and serves all its cells; each cell is one ordinary fine-tuning run, with
model selection on validation and the test split touched once. A finished cell is one line of
`results.jsonl`, so a killed study re-run skips what is done and continues.
"""

import json
import logging
from pathlib import Path
from typing import Any

from accelerate import PartialState

from tunekit.atomic import append_line, atomic_write_json, atomic_write_text
from tunekit.console import StudyProgress, quiet_runs
from tunekit.data import load_raw
from tunekit.errors import TunekitError
from tunekit.preemption import NonFiniteLoss, set_resume_command
from tunekit.splits import prepare_splits, stratified_subset
from tunekit.study import budgets
from tunekit.study.arguments import StudyArguments
from tunekit.study.arms import (
    BF16_SUFFIX,
    architecture_of,
    bf16_recurrence,
    init_of,
    is_bf16,
    is_lora,
    is_scratch,
    pretraining_of,
    pretraining_order,
)
from tunekit.study.divergence import diverged_record, read_diverged
from tunekit.study.objectives import objective_changes, with_flops_budget
from tunekit.study.outputs import write_study_outputs
from tunekit.study.probes import probe_pretrained
from tunekit.study.report import (
    load_results,
)
from tunekit.study.stages import at_least_min_steps, examples_per_step, match_tokens, stage_args
from tunekit.tasks import run_finetuning, run_pretraining
from tunekit.tokenizer_training import train_wordpiece

logger = logging.getLogger(__name__)


def _read_json(path: Path) -> dict | None:
    """What an earlier run left at `path`, or None: the study's way of knowing a step is done."""
    return json.loads(path.read_text()) if path.is_file() else None


class Study:
    def __init__(self, args: StudyArguments, command: str = "python scripts/study.py") -> None:
        self.args = args
        self.command = command
        self.root = Path(args.output_dir)
        self.tokenizer_dir = self.root / "tokenizer"
        self.results_path = self.root / "results.jsonl"
        self.diverged_path = self.root / "diverged.jsonl"

    def arms(self) -> list[str]:
        arms = list(self.args.arms)
        if self.args.lstm_bf16_recurrence:
            arms += [arm + BF16_SUFFIX for arm in self.args.arms if architecture_of(arm) == "lstm"]
        return arms

    def train_tokenizer(self) -> None:
        """One WordPiece on the (test-deduplicated) pretraining text, shared by every arm."""
        if (self.tokenizer_dir / "tokenizer.json").is_file():
            return
        model_args, data_args, train_args = stage_args(
            self.args.transformer_pretrain_recipe, self.args, self.args.pretrain_overrides
        )
        splits = prepare_splits(load_raw(data_args), data_args, train_args.seed, labeled=False)
        tokenizer = train_wordpiece(
            splits.train,
            model_args.vocab_size,
            model_args.max_position_embeddings,
            data_args.text_column,
            model_args.tokenizer_training_chars,
        )
        tokenizer.save_pretrained(self.tokenizer_dir)

    def pretrain_dir(self, name: str, budget: int | None = None) -> Path:
        """A pretraining's directory, per pretraining budget when the study has that axis."""
        return budgets.budget_dir(self.root, name, budget, self.args.pretrain_budget_unit)

    def budgets_of(self, name: str) -> list[int | None]:
        """The pretraining budgets pretraining `name` runs at ([None]: its recipe's length)."""
        return budgets.budgets_of(name, self.args.pretrain_budgets, self.args.pretrain_budget_arms)

    def pretrain(self, name: str, budget: int | None = None) -> dict:
        """Run (or reuse, or resume) one pretraining (`arms.pretraining_of`), of `budget` steps or
        tokens when given; results.json marks it done."""
        output_dir = self.pretrain_dir(name, budget)
        if (saved := _read_json(output_dir / "results.json")) is not None:
            return saved
        architecture = architecture_of(name)
        recipe = getattr(self.args, f"{architecture}_pretrain_recipe")
        changes: dict[str, Any] = {
            "output_dir": str(output_dir),
            "tokenizer_name_or_path": str(self.tokenizer_dir),
            "overwrite_output_dir": True,
        }
        if is_bf16(name):
            changes |= bf16_recurrence(self.args.lstm_bf16_rounded)
        changes |= objective_changes(name)  # mlm40: 40 % masked; rtd: replaced-token detection
        if any(output_dir.glob("checkpoints/step_*/progress.json")):
            changes["resume_from_checkpoint"] = "latest"
        run_args = stage_args(recipe, self.args, self.args.pretrain_overrides, **changes)
        if budget is not None:
            per_step = examples_per_step(run_args[2]) * run_args[1].max_seq_length
            unit = self.args.pretrain_budget_unit
            if unit == "flops":  # the steps that spend the budget at this model's FLOPs per token
                train_args = with_flops_budget(run_args, budget, per_step, str(self.tokenizer_dir))
            else:
                train_args = budgets.with_budget(run_args[2], budget, unit, per_step)
            run_args = (*run_args[:2], train_args)
        # The LSTM LM and the decoder see as many tokens as the encoder did.
        if architecture != "transformer" and self.args.match_lstm_pretraining_tokens:
            # Off the axis, match the transformer's longest pretraining.
            matched = budget if budget is not None else self.budgets_of("transformer")[-1]
            run_args = match_tokens(run_args, self.pretrain_dir("transformer", matched))
        return run_pretraining(*run_args)

    def probe(self, name: str, budget: int | None = None) -> dict:
        """What pretraining learned, before any fine-tuning: a linear probe on frozen mean-pooled
        features (labeled train subset -> validation) and, on the synthetic corpus, whether the
        model picks the right anchor for every polar word ('X means [MASK]' for the masked LM, the
        word after 'X means' for the LSTM LM). Measured once, cached next to the pretrained model."""
        output_dir = self.pretrain_dir(name, budget)
        cached = output_dir / "probes.json"
        if (saved := _read_json(cached)) is not None:
            return saved
        architecture = architecture_of(name)
        recipe = getattr(self.args, f"{architecture}_finetune_recipe")
        _, data_args, train_args = stage_args(
            recipe, self.args, self.args.finetune_overrides, max_train_samples=None
        )
        splits = prepare_splits(load_raw(data_args), data_args, train_args.seed, labeled=True)
        column, label = data_args.text_column, data_args.label_column
        # Up to 500 probe examples (a label budget larger than the data is an error; this is a cap).
        splits.train = stratified_subset(splits.train, 500, label, train_args.seed)
        validation = splits.validation.select(range(min(1000, len(splits.validation))))
        probes = probe_pretrained(
            output_dir,
            architecture,
            (splits.train[column], splits.train[label]),
            (validation[column], validation[label]),
            max_length=data_args.max_seq_length,
            synthetic_seed=data_args.synthetic_seed if data_args.uses_synthetic else None,
        )
        atomic_write_json(cached, probes)
        return probes

    def cell(self, arm: str, budget: str, seed: int, pretrain_budget: int | None = None) -> dict:
        architecture, init = architecture_of(arm), init_of(arm)
        recipe = {
            ("transformer", "pretrained"): self.args.transformer_finetune_recipe,
            ("transformer", "scratch"): self.args.transformer_scratch_recipe,
            ("decoder", "pretrained"): self.args.decoder_finetune_recipe,
            ("decoder", "scratch"): self.args.decoder_finetune_recipe,
        }.get((architecture, init), self.args.lstm_finetune_recipe)
        if is_lora(arm):
            recipe = self.args.transformer_lora_recipe
        output_dir = self.root / "cells" / arm / f"budget_{budget}" / f"seed_{seed}"
        if pretrain_budget is not None:
            axis_dir = f"pretrain_{self.args.pretrain_budget_unit}_{pretrain_budget}"
            output_dir = output_dir.parent / axis_dir / output_dir.name
        changes: dict[str, Any] = {
            "output_dir": str(output_dir),
            "overwrite_output_dir": True,
            "save_model": self.args.push_to_hub,  # a cell may be pushed once the study is done
            "disable_tqdm": True,  # the study's own bar counts cells
            "seed": seed,
            "max_train_samples": None if budget == "all" else int(budget),
            "tokenizer_name_or_path": str(self.tokenizer_dir),
            "model_name_or_path": str(self.pretrain_dir(pretraining_of(arm), pretrain_budget))
            if init == "pretrained"
            else None,
        }
        if is_bf16(arm):
            changes |= bf16_recurrence(self.args.lstm_bf16_rounded)
        run_args = stage_args(recipe, self.args, self.args.overrides_for(arm, budget), **changes)
        if budget != "all" and self.args.min_finetune_steps:
            run_args = at_least_min_steps(run_args, int(budget), self.args.min_finetune_steps)
        results = run_finetuning(*run_args)
        axis = {}
        if pretrain_budget is not None:
            pretrained = json.loads(
                (self.pretrain_dir(pretraining_of(arm), pretrain_budget) / "results.json").read_text()
            )
            axis = {
                "pretrain_budget": pretrain_budget,
                "pretrain_budget_unit": self.args.pretrain_budget_unit,
                "pretrain_tokens": pretrained["tokens_seen"],
                "pretrain_flops": pretrained.get("train_flops"),
            }
        row = axis | {
            "arm": arm,
            "budget": budget if budget == "all" else int(budget),
            "seed": seed,
            "test_accuracy": results["test_accuracy"],
            "test_f1": results["test_f1"],
            "eval_accuracy": results.get("eval_accuracy"),
            "steps": results["global_step"],
            "wall_time": results["wall_time"],
            "train_flops": results["train_flops"],
            "num_parameters": results["num_parameters"],
            "trainable_parameters": results["trainable_parameters"],
            "train_examples": results["train_examples"],
            "mixed_precision": results["mixed_precision"],
        }
        if flags := self.args.cell_flags(arm, budget):
            row["cell_flags"] = flags
        return row

    def diverged(self) -> list[dict]:
        """This study's diverged cells (under its current cell_overrides)."""
        return read_diverged(self.diverged_path, self.args)

    def current_rows(self, finished: list[dict]) -> list[dict]:
        """The finished cells that are still this study's: a cell trained under other cell_overrides
        than the study's now runs again."""
        current = [row for row in finished if self.args.is_current(row)]
        if len(current) < len(finished):
            logger.info("re-running %d cells whose cell_overrides changed", len(finished) - len(current))
        return current

    def run(self) -> list[dict]:
        set_resume_command(self.command)  # a stopped study resumes by running its command again
        try:
            with quiet_runs():
                return self._run()
        finally:
            set_resume_command(None)

    def _run(self) -> list[dict]:
        self.root.mkdir(parents=True, exist_ok=True)
        arms = self.arms()
        pretraining = {}
        if self.args.report_only:
            names = [d.name for d in self.root.glob("pretrain/*")]
            for name in sorted(names, key=pretraining_order):
                saved_dir = self.pretrain_dir(name, self.budgets_of(name)[-1])
                if (saved := _read_json(saved_dir / "results.json")) is not None:
                    pretraining[name] = saved | (_read_json(saved_dir / "probes.json") or {})
            if not self.results_path.is_file():
                raise TunekitError(f"report_only: no {self.results_path} yet; run the study first")
            rows = load_results(self.results_path)
            self.write_outputs(rows, pretraining)
            return rows
        with (self.root / "commands.txt").open("a") as handle:
            handle.write(self.command + "\n")
        self.train_tokenizer()
        names = {pretraining_of(arm) for arm in arms if not is_scratch(arm)}
        for name in sorted(names, key=pretraining_order):
            for budget in self.budgets_of(name):  # the largest last: `pretraining` describes it in the report
                pretraining[name] = self.pretrain(name, budget)
                if PartialState().is_main_process:
                    pretraining[name] |= self.probe(name, budget)
        finished = self.current_rows(load_results(self.results_path) if self.results_path.is_file() else [])
        # Rewrite without a line that a killed run left half-written, so appends stay valid JSONL.
        atomic_write_text(self.results_path, "".join(json.dumps(row) + "\n" for row in finished))
        diverged = self.diverged()
        done = {
            (row["arm"], str(row["budget"]), row["seed"], row.get("pretrain_budget"))
            for row in finished + diverged
        }
        grid = [
            (arm, budget, seed, pretrain_budget)
            for budget in self.args.budgets
            for seed in self.args.seeds
            for arm in arms
            for pretrain_budget in ([None] if is_scratch(arm) else self.budgets_of(pretraining_of(arm)))
        ]
        todo = [cell for cell in grid if cell not in done]
        if len(todo) < len(grid):
            logger.info("skipping %d finished cells", len(grid) - len(todo))
        progress = StudyProgress(len(grid), len(grid) - len(todo), PartialState().is_local_main_process)
        for arm, budget, seed, pretrain_budget in todo:
            with progress.running():
                try:
                    row = self.cell(arm, budget, seed, pretrain_budget)
                except NonFiniteLoss as error:  # one diverged cell does not end the study
                    record = diverged_record(self.args, arm, budget, seed, pretrain_budget, error)
                    append_line(self.diverged_path, json.dumps(record))
                    progress.cell_diverged(record)
                    continue
            append_line(self.results_path, json.dumps(row))
            progress.cell_done(row)
        progress.close()
        rows = load_results(self.results_path)
        self.write_outputs(rows, pretraining)
        return rows

    def write_outputs(self, all_rows: list[dict], pretraining: dict[str, dict]) -> None:
        """report.md, the plots and the printed summary (tunekit.study.outputs)."""
        write_study_outputs(self, all_rows, pretraining)

    def commands(self) -> list[str]:
        """Every invocation that trained part of this study, in order (a resumed study has several)."""
        recorded = self.root / "commands.txt"
        return recorded.read_text().splitlines() if recorded.is_file() else [self.command]
