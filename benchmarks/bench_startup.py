"""How long a command takes to answer when it does no work: --help, --cfg job and a bad value
(each one line, exit 2), next to a bare `python -c pass` and to importing the module that does
the training (what every command imported first before its config was checked up front).

    uv run python benchmarks/bench_startup.py [--rounds 5] [--compare-src OTHER_CHECKOUT/src]

With --compare-src, each command also runs from another checkout's sources (e.g. a
`git worktree` of an older commit), in the same rounds, as a second column.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from machine import describe

PYTHON = [sys.executable]
CASES = {
    "python -c pass": [*PYTHON, "-c", "pass"],
    "captcha-train --help": [*PYTHON, "-m", "captcha_robustness.train", "--help"],
    "captcha-train --cfg job": [*PYTHON, "-m", "captcha_robustness.train", "--cfg", "job"],
    "captcha-train optimizer.lr=-1": [*PYTHON, "-m", "captcha_robustness.train", "optimizer.lr=-1"],
    "captcha-eval noise.level=2": [*PYTHON, "-m", "captcha_robustness.evaluate", "noise.level=2"],
    "captcha-predict images=missing.png": [*PYTHON, "-m", "captcha_robustness.predict", "ckpt_path=x.ckpt",
                                            "images=missing.png"],
    "import the training module (the old start)": [*PYTHON, "-c", "import captcha_robustness.commands.train"],
}


def seconds(command: list[str], cwd: str, src: str | None = None) -> float:
    env = {**os.environ, "PYTHONPATH": src} if src else None
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, capture_output=True, check=False, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compare-src", help="another checkout's src/ folder, measured alongside")
    args = parser.parse_args()
    print(describe())
    sources = {"this checkout": None, **({args.compare_src: args.compare_src} if args.compare_src else {})}
    with tempfile.TemporaryDirectory() as cwd:
        times = {(name, source): [] for name in CASES for source in sources}
        for _ in range(args.rounds):  # interleaved, so that a noisy moment hits every case alike
            for name, command in CASES.items():
                for label, src in sources.items():
                    times[(name, label)].append(seconds(command, cwd, src))
    print(f"median seconds of {args.rounds} rounds (min-max)")
    print("| command | " + " | ".join(sources) + " |")
    print("| --- |" + " --- |" * len(sources))
    for name in CASES:
        cells = [f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" for v in (times[(name, s)] for s in sources)]
        print(f"| `{name}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
