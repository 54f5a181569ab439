"""The train-noise x test-noise robustness matrix, as two documented sweeps:

1. captcha-train -m noise=none,sp_mixed,gaussian_mixed,both_mixed   (one model per regime)
2. captcha-eval -m ckpt_path=<the 4 best checkpoints> noise=gaussian,salt_and_pepper \
       'noise.level=range(0,1.05,0.05)'

Both sweeps write under --out (train/ and eval/); the eval sweep's root gets the combined
table, summary.csv, the curves and robustness_matrix.csv / .png (rows: training regime,
columns: test condition). Re-running the same command skips every finished job.

    uv run python scripts/robustness_matrix.py [--out multirun/robustness_matrix]
        [--set digits=mnist --set digits.root=../shared/data] [--train-set trainer.max_epochs=20]
        [--eval-set data.test_size=2000]
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

from captcha_robustness.study import best_checkpoints

REGIMES = "none,sp_mixed,gaussian_mixed,both_mixed"


def step(args: list[str]) -> None:
    print("+ " + shlex.join(args), flush=True)
    # The commands live beside this interpreter (the project's environment).
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    if subprocess.run(args, env=env).returncode != 0:
        sys.exit(f"failed: {shlex.join(args)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("multirun/robustness_matrix"))
    parser.add_argument("--regimes", default=REGIMES, help="noise configs to train on (conf/noise/)")
    parser.add_argument("--levels", default="range(0,1.05,0.05)", help="test noise levels (a Hydra sweep)")
    parser.add_argument("--set", action="append", default=[], help="override for both sweeps")
    parser.add_argument("--train-set", action="append", default=[], help="override for the training sweep")
    parser.add_argument("--eval-set", action="append", default=[], help="override for the evaluation sweep")
    args = parser.parse_args()

    out = args.out.resolve()
    step(["captcha-train", "-m", f"noise={args.regimes}", *args.set, *args.train_set,
          f"hydra.sweep.dir={out / 'train'}"])
    checkpoints = ",".join(best_checkpoints(out / "train"))
    step(["captcha-eval", "-m", f"ckpt_path={checkpoints}", "noise=gaussian,salt_and_pepper",
          f"noise.level={args.levels}", *args.set, *args.eval_set, f"hydra.sweep.dir={out / 'eval'}"])
    print(f"robustness matrix: {out / 'eval' / 'robustness_matrix.png'}")


if __name__ == "__main__":
    main()
