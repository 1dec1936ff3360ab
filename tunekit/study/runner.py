"""The pretraining-advantage study: arms (tunekit.study.arms) x label budgets x seeds, run and written up.

One tokenizer is trained on the pretraining text and shared by every arm. Each arm's
pretraining runs once and serves all its cells; each cell is one ordinary fine-tuning run, with
model selection on validation and the test split touched once. A finished cell is one line of
`results.jsonl`, so a killed study re-run skips what is done and continues. When the cells are
done, the study writes report.md, the plots and the printed summary (`Study.write_outputs`).
"""

import dataclasses
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from accelerate import PartialState

from tunekit.atomic import append_line, atomic_write_json, atomic_write_text
from tunekit.config import recipe_defaults, recipe_dict
from tunekit.data.sources import load_raw
from tunekit.data.splits import prepare_splits, stratified_subset
from tunekit.data.tokenizer_training import train_wordpiece
from tunekit.errors import TunekitError
from tunekit.study import budgets
from tunekit.study.arguments import CellOverride, StudyArguments, cell_flags
from tunekit.study.arms import (
    DEFAULT_ARMS,
    REGISTRY,
    Arm,
    Pretraining,
    bf16_recurrence,
    bf16_variant,
    pretraining_named,
    pretraining_order,
    report_order,
)
from tunekit.study.divergence import diverged_record, read_diverged
from tunekit.study.objectives import with_flops_budget
from tunekit.study.plots import plot_learning_curve, plot_pretraining_gain
from tunekit.study.probes import describe_probes, probe_pretrained
from tunekit.study.publish import check_study_can_push, push_best_models
from tunekit.study.report import (
    format_summary_table,
    load_results,
    machine_description,
    summarize,
    write_report,
)
from tunekit.study.stages import RunArgs, at_least_min_steps, examples_per_step, match_tokens, stage_args
from tunekit.training.checkpoint import RECIPE_FILE
from tunekit.training.console import StudyProgress, quiet_runs
from tunekit.training.preemption import NonFiniteLoss, set_resume_command
from tunekit.training.preflight import RESUME_MAY_CHANGE, recipe_changes
from tunekit.training.run_lock import lock_output_dir, release_output_dir
from tunekit.training.tasks import run_finetuning, run_pretraining

logger = logging.getLogger(__name__)

# What may differ between a finished pretraining's recipe and the study's without retraining it: what
# a resume may change, but not its length (a pretraining of another length is another budget's).
STUDY_REUSE_IGNORES = RESUME_MAY_CHANGE - {"max_steps", "num_train_epochs"}


def _read_json(path: Path) -> dict | None:
    """What an earlier run left at `path`, or None: the study's way of knowing a step is done."""
    return json.loads(path.read_text()) if path.is_file() else None


@dataclass(frozen=True)
class Cell:
    """One fine-tuning run of the grid, with the cell_overrides entries that apply to it."""

    arm: Arm
    budget: str
    seed: int
    pretrain_budget: int | None
    overrides: tuple[CellOverride, ...]

    @property
    def key(self) -> tuple[str, str, int, int | None]:
        return self.arm.name, self.budget, self.seed, self.pretrain_budget

    @property
    def flags(self) -> str:
        return cell_flags(self.overrides)


class Study:
    def __init__(self, args: StudyArguments, command: str = "python scripts/study.py") -> None:
        self.args = args
        self.command = command
        self.root = Path(args.output_dir)
        self.tokenizer_dir = self.root / "tokenizer"
        self.results_path = self.root / "results.jsonl"
        self.diverged_path = self.root / "diverged.jsonl"

    def arms(self) -> list[Arm]:
        """The study's arms, then the bf16-recurrence variants `lstm_bf16_recurrence` adds."""
        arms = [REGISTRY[name] for name in self.args.arms]
        if self.args.lstm_bf16_recurrence:
            arms += [variant for arm in arms if (variant := bf16_variant(arm))]
        return arms

    def train_tokenizer(self) -> None:
        """One WordPiece on the (test-deduplicated) pretraining text, shared by every arm."""
        if (self.tokenizer_dir / "tokenizer.json").is_file():
            return
        model_args, data_args, train_args = stage_args(
            self.args.transformer_pretrain_recipe, self.args.pretrain_argv
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

    def pretraining_args(self, pretraining: Pretraining, budget: int | None = None) -> RunArgs:
        """The typed recipe of one pretraining, of `budget` steps, tokens or FLOPs when given."""
        output_dir = self.pretrain_dir(pretraining.name, budget)
        changes: dict[str, Any] = {
            "output_dir": str(output_dir),
            "tokenizer_name_or_path": str(self.tokenizer_dir),
            "overwrite_output_dir": True,
        }
        if pretraining.bf16:
            changes |= bf16_recurrence(self.args.lstm_bf16_rounded)
        changes |= dict(pretraining.recipe_changes)  # another objective (tunekit.study.objectives)
        if any(output_dir.glob("checkpoints/step_*/progress.json")):
            changes["resume_from_checkpoint"] = "latest"
        recipe = getattr(self.args, pretraining.recipe)
        run_args = stage_args(recipe, self.args.pretrain_argv, **changes)
        if budget is not None:
            per_step = examples_per_step(run_args[2]) * run_args[1].max_seq_length
            unit = self.args.pretrain_budget_unit
            if unit == "flops":  # the steps that spend the budget at this model's FLOPs per token
                train_args = with_flops_budget(run_args, budget, per_step, str(self.tokenizer_dir))
            else:
                train_args = budgets.with_budget(run_args[2], budget, unit, per_step)
            run_args = (*run_args[:2], train_args)
        # The LSTM LM and the decoder see as many tokens as the encoder did.
        if (reference := pretraining.matches_tokens_of) and self.args.match_lstm_pretraining_tokens:
            # Off the axis, match the reference's longest pretraining.
            matched = budget if budget is not None else self.budgets_of(reference)[-1]
            run_args = match_tokens(run_args, self.pretrain_dir(reference, matched))
        return run_args

    def pretrain(self, pretraining: Pretraining, budget: int | None = None) -> dict:
        """Run (or reuse, or resume) one pretraining; results.json marks it done."""
        output_dir = self.pretrain_dir(pretraining.name, budget)
        if (saved := _read_json(output_dir / "results.json")) is not None:
            return saved
        return run_pretraining(*self.pretraining_args(pretraining, budget))

    def check_finished_pretrainings(self, pretrainings: list[Pretraining]) -> None:
        """A finished pretraining is reused only while the study would still run it as it ran: one
        trained on other data or with another recipe would silently stand in for the new one (and its
        tokenizer and cells with it), so the study refuses before training anything."""
        for pretraining in pretrainings:
            for budget in self.budgets_of(pretraining.name):
                output_dir = self.pretrain_dir(pretraining.name, budget)
                saved = output_dir / RECIPE_FILE
                if not (output_dir / "results.json").is_file() or not saved.is_file():
                    continue
                run_args = self.pretraining_args(pretraining, budget)
                current, defaults = recipe_dict(*run_args), recipe_defaults(*run_args)
                if changed := recipe_changes(saved, current, STUDY_REUSE_IGNORES, defaults):
                    raise TunekitError(
                        f"pretrain_overrides: {output_dir} was pretrained with another recipe than this "
                        f"study's now ({changed}); a study reuses only what it would still run, so give "
                        "the changed study its own output_dir (or remove this one to start it over)"
                    )

    def probe(self, pretraining: Pretraining, budget: int | None = None) -> dict:
        """What pretraining learned, before any fine-tuning: a linear probe on frozen mean-pooled
        features (labeled train subset -> validation) and, on the synthetic corpus, whether the
        model picks the right anchor for every polar word ('X means [MASK]' for the masked LM, the
        word after 'X means' for the left-to-right LMs). Measured once, cached next to the model."""
        output_dir = self.pretrain_dir(pretraining.name, budget)
        cached = output_dir / "probes.json"
        if (saved := _read_json(cached)) is not None:
            return saved
        recipe = getattr(self.args, pretraining.probe_recipe)
        _, data_args, train_args = stage_args(recipe, self.args.finetune_argv, max_train_samples=None)
        splits = prepare_splits(load_raw(data_args), data_args, train_args.seed, labeled=True)
        column, label = data_args.text_column, data_args.label_column
        # Up to 500 probe examples (a label budget larger than the data is an error; this is a cap).
        splits.train = stratified_subset(splits.train, 500, label, train_args.seed)
        validation = splits.validation.select(range(min(1000, len(splits.validation))))
        probes = probe_pretrained(
            output_dir,
            pretraining.probe,
            (splits.train[column], splits.train[label]),
            (validation[column], validation[label]),
            max_length=data_args.max_seq_length,
            synthetic_seed=data_args.synthetic_seed if data_args.uses_synthetic else None,
        )
        atomic_write_json(cached, probes)
        return probes

    def cell(self, cell: Cell) -> dict:
        arm, budget, seed, pretrain_budget = cell.arm, cell.budget, cell.seed, cell.pretrain_budget
        output_dir = self.root / "cells" / arm.name / f"budget_{budget}" / f"seed_{seed}"
        if pretrain_budget is not None:
            axis_dir = f"pretrain_{self.args.pretrain_budget_unit}_{pretrain_budget}"
            output_dir = output_dir.parent / axis_dir / output_dir.name
        pretrained_dir = self.pretrain_dir(arm.pretraining.name, pretrain_budget) if arm.pretraining else None
        changes: dict[str, Any] = {
            "output_dir": str(output_dir),
            "overwrite_output_dir": True,
            "save_model": self.args.push_to_hub,  # a cell may be pushed once the study is done
            "disable_tqdm": True,  # the study's own bar counts cells
            "seed": seed,
            "max_train_samples": None if budget == "all" else int(budget),
            "tokenizer_name_or_path": str(self.tokenizer_dir),
            "model_name_or_path": str(pretrained_dir) if pretrained_dir else None,
        }
        if arm.bf16:
            changes |= bf16_recurrence(self.args.lstm_bf16_rounded)
        # finetune_overrides, then the cell's own entries: one parse, into the typed recipe.
        flags = [*self.args.finetune_argv, *(flag for override in cell.overrides for flag in override.argv)]
        run_args = stage_args(getattr(self.args, arm.finetune_recipe), flags, **changes)
        if budget != "all" and self.args.min_finetune_steps:
            run_args = at_least_min_steps(run_args, int(budget), self.args.min_finetune_steps)
        results = run_finetuning(*run_args)
        axis = {}
        if pretrain_budget is not None and pretrained_dir is not None:
            pretrained = json.loads((pretrained_dir / "results.json").read_text())
            axis = {
                "pretrain_budget": pretrain_budget,
                "pretrain_budget_unit": self.args.pretrain_budget_unit,
                "pretrain_tokens": pretrained["tokens_seen"],
                "pretrain_flops": pretrained.get("train_flops"),
            }
        row = axis | {
            "arm": arm.name,
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
        if cell.flags:
            row["cell_flags"] = cell.flags
        return row

    def grid(self) -> list[Cell]:
        """Every cell of the study, label budget by label budget."""
        return [
            Cell(arm, budget, seed, pretrain_budget, self.args.overrides_of(arm, budget))
            for budget in self.args.budgets
            for seed in self.args.seeds
            for arm in self.arms()
            for pretrain_budget in (self.budgets_of(arm.pretraining.name) if arm.pretraining else [None])
        ]

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
        # One study writing a directory at a time (a report_only peek at a running study reads it).
        locking = not self.args.report_only
        if locking:
            lock_output_dir(self.root, PartialState())
        set_resume_command(self.command)  # a stopped study resumes by running its command again
        try:
            with quiet_runs():
                return self._run()
        finally:
            set_resume_command(None)
            if locking:
                release_output_dir(self.root)

    def _run(self) -> list[dict]:
        if self.args.push_to_hub:
            check_study_can_push(self.args)
        self.root.mkdir(parents=True, exist_ok=True)
        pretraining = {}
        if self.args.report_only:
            found = [p for d in self.root.glob("pretrain/*") if (p := pretraining_named(d.name))]
            for pretrained in sorted(found, key=pretraining_order):
                saved_dir = self.pretrain_dir(pretrained.name, self.budgets_of(pretrained.name)[-1])
                if (saved := _read_json(saved_dir / "results.json")) is not None:
                    pretraining[pretrained.name] = saved | (_read_json(saved_dir / "probes.json") or {})
            if not self.results_path.is_file():
                raise TunekitError(f"report_only: no {self.results_path} yet; run the study first")
            rows = load_results(self.results_path)
            self.write_outputs(rows, pretraining)
            return rows
        pretrainings = {arm.pretraining.name: arm.pretraining for arm in self.arms() if arm.pretraining}
        # Before anything is written (commands.txt included): a refused study leaves no trace.
        self.check_finished_pretrainings(sorted(pretrainings.values(), key=pretraining_order))
        with (self.root / "commands.txt").open("a") as handle:
            handle.write(self.command + "\n")
        self.train_tokenizer()
        for pretrained in sorted(pretrainings.values(), key=pretraining_order):
            # the largest budget last: `pretraining` describes it in the report
            for budget in self.budgets_of(pretrained.name):
                pretraining[pretrained.name] = self.pretrain(pretrained, budget)
                if PartialState().is_main_process:
                    pretraining[pretrained.name] |= self.probe(pretrained, budget)
        finished = self.current_rows(load_results(self.results_path) if self.results_path.is_file() else [])
        # Rewrite without a line that a killed run left half-written, so appends stay valid JSONL.
        atomic_write_text(self.results_path, "".join(json.dumps(row) + "\n" for row in finished))
        diverged = self.diverged()
        done = {
            (row["arm"], str(row["budget"]), row["seed"], row.get("pretrain_budget"))
            for row in finished + diverged
        }
        grid = self.grid()
        todo = [cell for cell in grid if cell.key not in done]
        if len(todo) < len(grid):
            logger.info("skipping %d finished cells", len(grid) - len(todo))
        progress = StudyProgress(len(grid), len(grid) - len(todo), PartialState().is_local_main_process)
        for cell in todo:
            with progress.running():
                try:
                    row = self.cell(cell)
                except NonFiniteLoss as error:  # one diverged cell does not end the study
                    record = diverged_record(*cell.key, cell.flags, error)
                    append_line(self.diverged_path, json.dumps(record))
                    progress.cell_diverged(record)
                    continue
            append_line(self.results_path, json.dumps(row))
            progress.cell_done(row)
        progress.close()
        rows = load_results(self.results_path)
        self.write_outputs(rows, pretraining)
        return rows

    def commands(self) -> list[str]:
        """Every invocation that trained part of this study, in order (a resumed study has several)."""
        recorded = self.root / "commands.txt"
        return recorded.read_text().splitlines() if recorded.is_file() else [self.command]

    def write_outputs(self, all_rows: list[dict], pretraining: dict[str, dict]) -> None:
        """report.md, learning_curve.png (and pretraining_gain.png with a budget axis), the summary."""
        rows = budgets.main_rows(all_rows)
        diverged = self.diverged()
        if not rows and diverged:
            raise TunekitError(
                f"no cell of {self.root} finished: {len(diverged)} diverged "
                f"(first: {diverged[0]['arm']} at {diverged[0]['budget']} labels; {self.diverged_path})"
            )
        gains = budgets.budget_gains(all_rows)
        arms = self.arms()
        per_arm = {arm.name: pretraining.get(arm.pretraining.name, {}) for arm in arms if arm.pretraining}
        transformer = pretraining.get("transformer", {})
        notes = []
        if (dropped := transformer.get("pretraining_texts_dropped_as_test_copies")) is not None:
            notes.append(
                f"{dropped} pretraining texts that also appear verbatim in the test split were dropped "
                "from the pretraining corpus before training."
            )
        for name, results in pretraining.items():
            if pretrained := pretraining_named(name):  # named: two objectives share one kind of model
                notes += [f"`pretrain/{name}`: {note}" for note in describe_probes(pretrained.probe, results)]
        for record in diverged:
            flags = f" ({record['cell_flags']})" if record.get("cell_flags") else ""
            notes.append(
                f"Diverged, left out of the means: `{record['arm']}` at {record['budget']} labels, seed "
                f"{record['seed']}{flags}: {record['error']}"
            )
        if any(arm.bf16 for arm in arms):
            how = (
                "with their LSTM recurrence computed in fp32 and rounded to bf16 after every operation "
                "(`lstm_bf16_rounded`: bf16 numerics, no autocast anywhere)"
                if self.args.lstm_bf16_rounded
                else "under bf16 autocast with the LSTM recurrence in bf16 too"
            )
            notes.append(
                f"`*_bf16` arms ran {how}, in their language-model pretraining as in fine-tuning; the other "
                "LSTM arms keep the recurrence in fp32."
            )
        resolved = yaml.safe_dump(recipe_dict(self.args), sort_keys=False)
        stages = [f"# {path}\n{Path(path).read_text()}" for path in self.recipes_used()]
        recipe_text = "\n".join([f"# the study, as resolved\n{resolved}", *stages])
        write_report(
            self.root / "report.md",
            rows,
            pretraining=per_arm,
            recipe_text=recipe_text,
            commands=self.commands(),
            machine=machine_description(),
            notes=notes,
            sections=budgets.report_section(gains, self.args.pretrain_budget_unit, "pretraining_gain.png"),
        )
        if gains:
            x_axis = "flops" if self.args.pretrain_budget_unit == "flops" else "tokens"
            title = f"Gain of pretraining against pretraining {'FLOPs' if x_axis == 'flops' else 'tokens'}"
            plot_pretraining_gain(self.root / "pretraining_gain.png", gains, title=title, x_axis=x_axis)
        plot_learning_curve(
            self.root / "learning_curve.png", rows, title="Test accuracy vs labels: pretrained vs scratch"
        )
        print(format_summary_table(summarize(rows)))
        for name, results in pretraining.items():
            print(
                f"pretraining {name}: {results.get('train_runtime', float('nan')):.0f} s, "
                f"{results.get('tokens_seen', 0):,} tokens, {results.get('num_parameters', 0):,} parameters"
            )
        print(f"report: {self.root / 'report.md'}  plot: {self.root / 'learning_curve.png'}")
        cells = f"{len(rows)} cells" + (f", {len(diverged)} diverged" if diverged else "")
        print(f"results: {self.results_path} ({cells})")
        if self.args.push_to_hub and PartialState().is_main_process:
            for arm_name, url in push_best_models(self.args, rows).items():
                print(f"pushed best {arm_name}: {url}")

    def recipes_used(self) -> list[str]:
        """The stage recipes the report quotes: those of the default arms (always, as every report
        has), then those the study's other arms add, in the order StudyArguments declares them."""

        def recipe_fields(names: Iterable[str]) -> list[str]:
            stages = [
                (arm.pretraining.recipe if arm.pretraining else None, arm.finetune_recipe)
                for arm in map(REGISTRY.get, sorted(names, key=report_order))
                if arm
            ]
            return list(dict.fromkeys(field for stage in stages for field in stage if field))

        quoted = recipe_fields(DEFAULT_ARMS)
        declared = [field.name for field in dataclasses.fields(StudyArguments)]
        added = set(recipe_fields(arm.name for arm in self.arms())) - set(quoted)
        quoted += sorted(added, key=declared.index)
        return [getattr(self.args, field) for field in quoted]
