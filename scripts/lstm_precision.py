"""Does the LSTM need fp32 where a transformer trains in bf16? The report from the precision studies.

`python scripts/lstm_precision.py --study_dirs D256 D512 --lengths 256 512 --texts_file F --output_dir O
[--transformer_dirs D256_fp32 D256_bf16 D512_fp32 D512_bf16] [--rounded_report_dir R]`
writes O/precision.md, O/lm_loss.png and O/gradient_flow_T<T>.png (and the data behind them). The
studies come from docs/results/lstm_precision/run_on_cpu.sh (`lstm_bf16_recurrence: true`).
"""

import sys
from pathlib import Path

from tunekit.cli import run_script
from tunekit.study.lstm_precision import PrecisionArguments, read_texts, write_precision_report


def main(args: PrecisionArguments) -> None:
    texts = read_texts(args.texts_file, count=50 * args.num_blocks)
    report = write_precision_report(
        args.studies(),
        texts,
        Path(args.output_dir),
        transformer_studies=args.transformer_studies(),
        rounded_report_dir=Path(args.rounded_report_dir) if args.rounded_report_dir else None,
        blocks=args.num_blocks,
        speed_hidden_size=args.speed_hidden_size,
        speed_batch_tokens=args.speed_batch_tokens,
        title_note=args.title_note,
        texts_source=f"`{Path(args.texts_file).name}`",
    )
    print(f"report: {report}")


if __name__ == "__main__":
    sys.exit(run_script(main, dataclass_types=(PrecisionArguments,)))
