"""The prepared GPU run (issue: the GPU run). `bash scripts/gpu_run.sh` calls this; see its header.

`python scripts/gpu_run.py run --phase 1|2 [--smoke]`: the plan in tools.gpu_session under one
wall-clock budget, then the archive in $OUT. `env` prints versions and the device (fails in one line
if something is missing); `check-load DIR` loads a saved model with plain transformers.
"""

import argparse
import json
import os
import sys
from pathlib import Path

# tools/ sits beside scripts/ and is not installed with tunekit: import it from this checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.gpu_session import (  # noqa: E402
    PlanConfig,
    environment_report,
    pack,
    plan_steps,
    restore_previous,
    run_plan,
)
from tunekit.errors import TunekitError  # noqa: E402


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    env = sub.add_parser("env")
    env.add_argument("--smoke", action="store_true")
    load = sub.add_parser("check-load")
    load.add_argument("model_dir")
    run = sub.add_parser("run")
    run.add_argument("--phase", type=int, choices=(1, 2), default=1)
    run.add_argument("--smoke", action="store_true")
    run.add_argument("--budget_s", type=float, default=float(os.environ.get("BUDGET_S", 510)))
    run.add_argument("--data_dir", default=os.environ.get("DATA_DIR", "device_data/imdb"))
    run.add_argument("--run_dir", default=os.environ.get("RUN_DIR", "outputs/gpu_run"))
    run.add_argument("--previous_dir", default=os.environ.get("PREVIOUS_DIR", "device_data/previous"))
    run.add_argument("--out", default=os.environ.get("OUT", "outputs/gpu_run_out"))
    args = parser.parse_args(argv)
    try:
        if args.command == "env":
            print(json.dumps(environment_report(require_cuda=not args.smoke), indent=2))
        elif args.command == "check-load":
            from transformers import AutoModelForMaskedLM

            model = AutoModelForMaskedLM.from_pretrained(args.model_dir)
            print(f"loaded {type(model).__name__} with {model.num_parameters():,} parameters")
        else:
            run_dir = Path(args.run_dir)
            # On the machine the first call left warm, its run directory is still here; a fresh
            # machine gets it from the archive that call returned.
            if run_dir.is_dir():
                print(f"[gpu_run] continuing in {run_dir}", flush=True)
            elif restore_previous(Path(args.previous_dir), run_dir):
                print(f"[gpu_run] restored the previous call's outputs into {run_dir}", flush=True)
            run_dir.mkdir(parents=True, exist_ok=True)
            config = PlanConfig(run_dir, Path(args.data_dir), args.smoke, args.phase)
            steps, finally_steps = plan_steps(config)
            try:
                run_plan(steps, args.budget_s, run_dir, finally_steps, tag=f"phase{args.phase}")
            finally:
                parts = pack(run_dir, Path(args.out))
                print(f"[gpu_run] packed: {', '.join(str(p) for p in parts)}", flush=True)
    except TunekitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
