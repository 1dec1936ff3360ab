"""The precision report's tables that need no study on disk: what bf16 changed per architecture,
and the host line read from /proc/cpuinfo text."""

from tunekit.study.precision_tables import bf16_runs, host_line, last_common_step, lm_loss_lines, read_cpuinfo


def test_what_bf16_changes_follows_the_cells_recorded_precision():
    lstm = [{"arm": "lstm_scratch"}, {"arm": "lstm_scratch_bf16", "mixed_precision": "no"}]
    assert bf16_runs("lstm", lstm) == "recurrence rounded to bf16 per op (no autocast)"
    lstm[1]["mixed_precision"] = "bf16"
    assert bf16_runs("lstm", lstm) == "recurrence in bf16 (both arms under bf16 autocast)"
    assert bf16_runs("transformer", []).startswith("whole model under bf16 autocast")


def test_the_host_line_names_the_cpu_and_its_bf16_units():
    cpuinfo = (
        "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\ncpu family\t: 6\nmodel\t\t: 207\n"
        "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n\n"
        "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu\n"
    )
    parsed = read_cpuinfo(cpuinfo)
    assert parsed["processors"] == "2" and parsed["model"] == "207"
    line = host_line(parsed)
    assert line.startswith("Intel(R) Xeon(R) Processor (family 6, model 207), 2 CPUs; bf16 units: ")
    assert "`avx512_bf16`, `amx_bf16`;" in line
    without = host_line(read_cpuinfo("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2\n"))
    assert "no `amx_bf16` or `avx512_bf16`" in without and "vector flags: `avx2`" in without


def test_a_running_pretraining_is_compared_at_the_last_step_both_precisions_reached():
    assert last_common_step({"50": 6.0, "100": 5.5, "200": 5.0}, {"50": 6.1, "100": 5.6}) == "100"
    assert last_common_step({"50": 6.0}, {}) is None
    losses = {
        "256": {"transformer": {"fp32": {"50": 6.0, "100": 5.5, "200": 5.0}, "bf16": {"50": 6.1, "100": 5.6}}}
    }
    (row,) = [line for line in lm_loss_lines(losses) if line.startswith("| 256 |")]
    assert row == (
        "| 256 | transformer MLM (masked tokens) | 50 / 100 / 200 | 6.000 / 5.500 / 5.000 | "
        "6.100 / 5.600 / — | +0.100 (step 100) |"
    )
