"""The step loop makes the host wait for the device only at logging steps (issue 7).

A CPU has no device to wait for, so the test watches for the operations that would make a CUDA
host wait: reading a tensor's value on the host (`item`, `float`, `int`, `bool`, `tolist`, `numpy`,
`cpu`) and ops whose output size depends on the data (`nonzero`, `masked_select`, a boolean index,
`unique`). A dispatch mode sees every aten op the loop runs; `tolist`/`numpy`/`cpu` read memory
without one on a CPU, so those methods are wrapped. Each read is traced to the first file outside
torch that asked for it. On a GPU, `torch.cuda.set_sync_debug_mode("error")` is the same check
done by the driver.

Two reads inside a step are of values that live on the host even on CUDA, so they wait on
nothing, and are left out: AdamW's step counters (non-fused AdamW keeps them as CPU tensors and
reads them with `.item()`) and a packed sequence's `batch_sizes` (torch keeps them on the host;
`nn.LSTM` reads the first), and values computed from those alone.

Two real ones were found by this test and removed: transformers' SDPA mask builder asked
`padding_mask.all()` of every padded batch (`tunekit.models.attention_masks` now builds the mask without
asking), and the LSTM read its lengths off the mask for `pack_padded_sequence` (the collators now
hand them over as host integers). A third, GPT-2's forward looking for pad tokens in every batch
given no mask, is skipped on tunekit's model instance.
"""

import sys
import warnings

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from tunekit.config import parse_recipe
from tunekit.training.host_syncs import HostSyncWatch
from tunekit.training.loop import TrainingRun
from tunekit.training.tasks import run_finetuning, run_pretraining

aten = torch.ops.aten
DATA_DEPENDENT_OPS = {
    aten._local_scalar_dense.default,  # item(), float(), int(), bool() of a tensor
    aten.nonzero.default,
    aten.masked_select.default,
    aten.is_nonzero.default,
    aten.equal.default,
    aten._unique2.default,
    aten.unique_consecutive.default,
    aten.unique_dim.default,
}


class SyncRecorder(TorchDispatchMode):
    """Host reads of tensor values, each with the loop phase ("step" or "after", step number)."""

    def __init__(self) -> None:
        super().__init__()
        self.phase: tuple[str, int] | None = None
        self.events: list[tuple[tuple[str, int], str, str, torch.Tensor | None]] = []
        # Tensors on the host even on CUDA, by id (held, so no id is reused): AdamW's step
        # counters and packed sequences' batch sizes.
        self.host_tensors: dict[int, torch.Tensor] = {}

    def on_host(self, *tensors: torch.Tensor) -> None:
        self.host_tensors.update((id(tensor), tensor) for tensor in tensors)

    def record(self, what: str, tensor: torch.Tensor | None) -> None:
        if self.phase is not None:
            self.events.append((self.phase, what, origin(), tensor))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        boolean_index = func is aten.index.Tensor and any(
            index is not None and index.dtype == torch.bool for index in args[1]
        )
        if func in DATA_DEPENDENT_OPS or boolean_index:
            self.record(str(func), args[0] if isinstance(args[0], torch.Tensor) else None)
        output = func(*args, **(kwargs or {}))
        inputs = [leaf for leaf in tree_leaves((args, kwargs)) if isinstance(leaf, torch.Tensor)]
        if inputs and all(id(tensor) in self.host_tensors for tensor in inputs):
            # computed from host values only (`batch_sizes[0]`, a counter's update): on the host
            self.on_host(*(leaf for leaf in tree_leaves(output) if isinstance(leaf, torch.Tensor)))
        return output


def origin() -> str:
    """The first file outside torch and this test on the stack: who asked for the read."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if "/torch/" not in name and name != __file__:
            parts = name.split("/")
            return "/".join(parts[-2:])
        frame = frame.f_back
    return "?"


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> SyncRecorder:
    recorder = SyncRecorder()

    def in_phase(name: str, method):
        def wrapped(run: TrainingRun, *args, **kwargs):
            recorder.phase = (name, run.progress.global_step + (name == "step"))
            try:
                return method(run, *args, **kwargs)
            finally:
                recorder.phase = None
                state = run.prepared.optimizer.state.values()
                recorder.on_host(*(entry["step"] for entry in state if "step" in entry))

        return wrapped

    monkeypatch.setattr(TrainingRun, "_step", in_phase("step", TrainingRun._step))
    monkeypatch.setattr(TrainingRun, "_after_step", in_phase("after", TrainingRun._after_step))
    pack = torch.nn.utils.rnn.pack_padded_sequence

    def packing(*args, **kwargs):
        packed = pack(*args, **kwargs)
        recorder.on_host(packed.batch_sizes)
        return packed

    monkeypatch.setattr(torch.nn.utils.rnn, "pack_padded_sequence", packing)
    for method in ("tolist", "numpy", "cpu"):
        original = getattr(torch.Tensor, method)

        def reading(tensor, *args, _original=original, _name=method, **kwargs):
            recorder.record(_name, tensor)
            return _original(tensor, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, reading)
    with recorder:
        yield recorder


def device_reads(recorder: SyncRecorder) -> dict[tuple[str, int], list[str]]:
    """{(phase, step): ["what @ origin", ...]}, without reads of tensors that live on the host."""
    reads: dict[tuple[str, int], list[str]] = {}
    for phase, what, where, tensor in recorder.events:
        if id(tensor) in recorder.host_tensors:
            continue
        reads.setdefault(phase, []).append(f"{what} @ {where}")
    return reads


# 7 steps, a log every 3: the logging steps are 3, 6 and the last, 7.
LOOP = ["--max_steps", "7", "--logging_steps", "3", "--eval_steps", "0", "--save_steps", "0"]
LOGGING_STEPS = {3, 6, 7}


CLM = ["--objective", "clm", "--max_position_embeddings", "64"]


@pytest.mark.parametrize(
    "task, extra",
    [
        ("pretrain", []),  # the masked-only head and its last layer at the masked rows
        ("pretrain", ["--gradient_accumulation_steps", "2", "--per_device_train_batch_size", "4"]),
        ("pretrain", ["--model_type", "lstm"]),  # the biLSTM LM on full blocks
        ("pretrain", ["--model_type", "llama", *CLM]),  # the recipes' decoder
        # GPT-2's forward would look for pad tokens in every batch given no mask
        ("pretrain", ["--model_type", "gpt2", *CLM]),
        # every review is longer than 8 tokens: full batches, no mask
        ("finetune", ["--max_seq_length", "8"]),
        # length-grouped, dynamically padded batches: masks built without asking
        ("finetune", []),
        ("finetune", ["--model_type", "bert"]),
        ("finetune", ["--model_type", "lstm"]),
    ],
    ids=[
        "mlm",
        "mlm-accumulated",
        "lstm-lm",
        "clm-llama",
        "clm-gpt2",
        "classifier-unpadded",
        "classifier-padded",
        "bert-classifier-padded",
        "lstm-classifier",
    ],
)
def test_the_host_reads_device_values_only_at_logging_steps(
    task, extra, pretrain_argv, finetune_argv, recorder
):
    argv = pretrain_argv if task == "pretrain" else finetune_argv
    run = run_pretraining if task == "pretrain" else run_finetuning
    run(*parse_recipe([*argv, *LOOP, "--max_grad_norm", "1.0", *extra]))
    reads = device_reads(recorder)
    in_steps = {
        read.split(" @ ")[1] for phase, found in reads.items() if phase[0] == "step" for read in found
    }
    assert in_steps == set(), reads
    after = {step for (name, step) in reads if name == "after"}
    # Every logging step reads the loss window (which also shows the recorder sees host reads);
    # no other step reads anything.
    assert after == LOGGING_STEPS, reads


def test_the_recorder_sees_a_read_inside_a_step(pretrain_argv, recorder, monkeypatch):
    """The check can fail: a `.item()` slipped into the step is caught."""
    import tunekit.training.loop

    original = tunekit.training.loop.optimizer_step

    def step_that_reads(*args, **kwargs):
        work = original(*args, **kwargs)
        work.loss.item()
        return work

    monkeypatch.setattr(tunekit.training.loop, "optimizer_step", step_that_reads)
    run_pretraining(*parse_recipe([*pretrain_argv, *LOOP]))
    steps_with_reads = sorted(step for (name, step) in device_reads(recorder) if name == "step")
    assert steps_with_reads == list(range(1, 8))


def test_debug_host_syncs_counts_cuda_sync_warnings_by_line(monkeypatch):
    """The CUDA branch's bookkeeping, with torch's warning raised by hand (CUDA itself: issue 9)."""
    modes = []
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", modes.append)
    watch = HostSyncWatch(True, torch.device("cuda"))
    with pytest.warns(DeprecationWarning, match="not a sync"), watch.watching():
        for _ in range(2):
            warnings.warn("called a synchronizing CUDA operation", UserWarning, stacklevel=1)
        warnings.warn("not a sync", DeprecationWarning, stacklevel=1)  # passed on, not swallowed
    assert modes == ["warn", "default"]  # on inside the block only
    record = watch.take()
    assert record["host_syncs"] == 2 and list(record["host_sync_sites"].values()) == [2]
    assert next(iter(record["host_sync_sites"])).startswith(__file__)
    assert watch.take() == {"host_syncs": 0, "host_sync_sites": {}}  # counts restart per record


def test_debug_host_syncs_says_once_that_a_cpu_counts_nothing(caplog):
    watch = HostSyncWatch(True, torch.device("cpu"))
    with watch.watching():
        torch.ones(2).sum().item()
    assert watch.take() == {} and "only CUDA reports" in caplog.text
