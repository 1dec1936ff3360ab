"""Bad inputs in the recipe and on the command line."""

from .workspace import Case, F, P

RECIPE_CASES = [
    Case("recipe-missing", F, lambda w: [str(w.root / "nope.yaml")], "recipe not found: "),
    Case("recipe-is-a-directory", F, lambda w: [str(w.root)], "is a directory; expected a YAML file"),
    Case(
        "yaml-syntax-error",
        F,
        lambda w: [w.write("r.yaml", "seed: 1\nlearning_rate: 1e-3\nmax_steps: [1, 2\n")],
        "not valid YAML at line 4",
    ),
    Case("yaml-not-a-mapping", F, lambda w: [w.write("r.yaml", "- seed\n- 1\n")], "a recipe is a mapping"),
    Case("recipe-not-utf8", F, lambda w: [w.write("r.yaml", b"seed: 1 # caf\xe9\n")], "is not UTF-8 text"),
    Case(
        "yaml-unknown-key",
        F,
        lambda w: [w.recipe(lerning_rate=1e-3)],
        "unknown key 'lerning_rate' (did you mean 'learning_rate'?)",
    ),
    Case("cli-unknown-flag", F, lambda w: w.finetune("--warmup", "3"), "unknown argument '--warmup'"),
    Case(
        "yaml-wrong-type", F, lambda w: [w.recipe(max_steps="ten")], "--max_steps: invalid int value: 'ten'"
    ),
    Case(
        "cli-wrong-type",
        F,
        lambda w: w.finetune("--learning_rate", "fast"),
        "--learning_rate: invalid float value: 'fast'",
    ),
    Case(
        "cli-bad-choice",
        F,
        lambda w: w.finetune("--lr_scheduler_type", "warm"),
        "--lr_scheduler_type: invalid choice: 'warm'",
    ),
    Case(
        "zero-batch-size",
        F,
        lambda w: w.finetune("--per_device_train_batch_size", "0"),
        "per_device_train_batch_size must be positive, got 0",
    ),
    Case(
        "negative-learning-rate",
        F,
        lambda w: w.finetune("--learning_rate", "-1e-3"),
        "learning_rate must be positive, got -0.001",
    ),
    Case(
        "zero-learning-rate",
        P,
        lambda w: w.pretrain("--learning_rate", "0"),
        "learning_rate must be positive",
    ),
    Case("zero-max-steps", P, lambda w: w.pretrain("--max_steps", "0"), "max_steps must be positive"),
    Case(
        "negative-epochs",
        F,
        lambda w: w.finetune("--max_steps", "-1", "--num_train_epochs", "-2"),
        "num_train_epochs must be positive",
    ),
    Case(
        "zero-gradient-accumulation",
        F,
        lambda w: w.finetune("--gradient_accumulation_steps", "0"),
        "gradient_accumulation_steps must be positive",
    ),
    Case("zero-eval-samples", F, lambda w: w.finetune("--max_eval_samples", "0"), "max_eval_samples must be"),
]
