"""captcha-report: rewrite report.md of a captcha-analyze folder from the tables in it.

    captcha-report multirun/reference-study/analysis
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="captcha-report", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="an analysis folder written by captcha-analyze")
    args = parser.parse_args(argv)
    if not (args.folder / "summary.csv").is_file():
        parser.exit(2, f"error: folder: {args.folder} holds no summary.csv; give a folder written by captcha-analyze\n")
    from captcha_robustness.analysis.report import write_report  # pandas: after the checks

    print(f"wrote {write_report(args.folder)}")


if __name__ == "__main__":
    sys.exit(main())
