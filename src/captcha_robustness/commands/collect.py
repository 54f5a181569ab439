"""captcha-collect: (re)build the combined table, summary and plots of sweep folders; exits 1
when some job of them did not finish (the tables still list it, as missing or failed).

    captcha-collect multirun/eval/2026-11-25_10-00-00
    captcha-collect SWEEP_A SWEEP_B --out results/both
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="captcha-collect", description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", type=Path, help="sweep folders (multirun/<command>/<time>)")
    parser.add_argument("--out", type=Path, help="output folder; default: the sweep folder when there is one")
    args = parser.parse_args(argv)
    for sweep in args.sweeps:
        if not sweep.is_dir() or not any(sweep.glob("*/.hydra/overrides.yaml")):
            parser.exit(2, f"error: sweeps: {sweep} is not a sweep folder (no job folders with .hydra/overrides.yaml)\n")
    if args.out is None and len(args.sweeps) > 1:
        parser.exit(2, "error: --out: required when combining several sweep folders\n")
    from captcha_robustness.sweeps.callback import report_lines  # pandas and matplotlib: after the checks
    from captcha_robustness.sweeps.collect import combine
    from captcha_robustness.sweeps.outputs import write_combined

    combined = combine(args.sweeps)
    written = write_combined(combined, args.out or args.sweeps[0])
    print("\n".join(report_lines(combined, written)))
    if combined.incomplete:  # as the sweep itself does: its tables are written, but the sweep is not done
        parser.exit(1, f"error: {len(combined.incomplete)} job(s) did not finish; re-run the sweep's command with "
                       f"hydra.sweep.dir=<its folder> to redo only those\n")


if __name__ == "__main__":
    sys.exit(main())
