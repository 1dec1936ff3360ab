"""The precision report's tables that need no study on disk: what bf16 changed per architecture,
and the host line read from /proc/cpuinfo text."""

from tunekit.study.precision_tables import bf16_runs, host_line, read_cpuinfo


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
