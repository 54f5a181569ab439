"""How long a command takes to answer when it does no work: --help, --cfg job and a bad value
(each one line, exit 2), next to a bare `python -c pass` and to importing the module that does
the training (what every command imported first before its config was checked up front).

    uv run python benchmarks/bench_startup.py [--rounds 5]
"""

from __future__ import annotations

import argparse
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
    "captcha-train -m noise.level=0.2,1.5 (2 jobs checked)": [
        *PYTHON, "-m", "captcha_robustness.train", "-m", "noise=gaussian", "noise.level=0.2,1.5"],
    "captcha-eval noise.level=2": [*PYTHON, "-m", "captcha_robustness.evaluate", "noise.level=2"],
    "captcha-predict images=missing.png": [*PYTHON, "-m", "captcha_robustness.predict", "ckpt_path=x.ckpt",
                                            "images=missing.png"],
    "import the training module (the old start)": [*PYTHON, "-c", "import captcha_robustness.commands.train"],
}


def seconds(command: list[str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(describe())
    with tempfile.TemporaryDirectory() as cwd:
        times = {name: [] for name in CASES}
        for _ in range(args.rounds):  # interleaved, so that a noisy moment hits every case alike
            for name, command in CASES.items():
                times[name].append(seconds(command, cwd))
    print(f"| command | median s (of {args.rounds}) | min-max s |")
    print("| --- | --- | --- |")
    for name, values in times.items():
        print(f"| `{name}` | {statistics.median(values):.2f} | {min(values):.2f}-{max(values):.2f} |")


if __name__ == "__main__":
    main()
