"""Training throughput of one process using every CPU core against one single-thread process
per core running at the same time: how much more the cores train in total when each trains
its own network (the hour-long two-network ensemble of docs/accuracy.md).

    uv run python scripts/bench_threads.py [--model multihead_cnn_deep] [--rounds 3] [--seconds 8] [--fp32]

Each process times bench_models.py's training step (forward + backward + AdamW on a fixed
batch of 64, in bf16 autocast unless --fp32; rendering excluded). The two set-ups alternate
for `rounds` rounds (these machines are noisy); medians are reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

import torch

from captcha_robustness.machine import describe


def worker(model_name: str, threads: int, seconds: float, bf16: bool) -> None:
    """Prints this process's training images per second at `threads` threads."""
    from bench_models import build, train_rate  # beside this script

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build(model_name, "cpu")
    images, labels = torch.rand(64, 1, 100, 110), torch.randint(0, 10, (64, 4))
    train_rate(model, images, labels, 2.0, bf16)  # warm-up
    print(train_rate(model, images, labels, seconds, bf16))


def rates(args: argparse.Namespace, processes: int, threads: int) -> list[float]:
    """Images per second of each of `processes` workers started together."""
    command = [sys.executable, __file__, "--worker", str(threads), "--model", args.model,
               "--seconds", str(args.seconds)] + (["--fp32"] if args.fp32 else [])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) for _ in range(processes)]
    outputs = [w.communicate()[0] for w in workers]
    if any(w.returncode for w in workers):
        sys.exit("error: a benchmark worker failed (its error is above)")
    return [float(out.strip().splitlines()[-1]) for out in outputs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="multihead_cnn_deep")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="timed seconds per process and round")
    parser.add_argument("--fp32", action="store_true", help="float32 instead of bf16 autocast")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # threads, in a worker process
    args = parser.parse_args()
    if args.worker:
        worker(args.model, args.worker, args.seconds, not args.fp32)
        return
    cores = os.cpu_count() or 1
    print(describe())
    print(f"model={args.model}, batch 64, {'float32' if args.fp32 else 'bf16 autocast'}, {cores} cores, "
          f"rounds={args.rounds}")
    together, apart = [], []
    for _ in range(args.rounds):
        together.append(rates(args, 1, cores)[0])
        apart.append(rates(args, cores, 1))
    one = statistics.median(together)
    each = [statistics.median(r[i] for r in apart) for i in range(cores)]
    print(f"one process, {cores} threads: {one:,.0f} img/s")
    print(f"{cores} processes, 1 thread each, at once: {' + '.join(f'{r:,.0f}' for r in each)} = "
          f"{sum(each):,.0f} img/s in total ({sum(each) / one:.2f}x); each runs at {min(each) / one:.2f}-"
          f"{max(each) / one:.2f}x the one process's speed")


if __name__ == "__main__":
    main()
