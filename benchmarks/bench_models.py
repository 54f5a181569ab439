"""Training and inference throughput of the models, side by side in one process, in
alternating rounds (these machines are noisy; medians are reported).

    uv run python benchmarks/bench_models.py [--rounds 3] [--batch 64] [--infer-batch 256] [--bf16]

Training: forward + backward + AdamW step on a fixed batch (rendering excluded: it is the
same for every model and measured by bench_synthesis.py). Inference: forward in
inference mode. Both at the default 100 x 110 input with 4 digits, on the CPU unless a GPU
is present. With --bf16, the multi-head models are also measured under bfloat16 autocast
(what trainer.precision=bf16-mixed does), as extra rows.
"""

from __future__ import annotations

import argparse
import statistics
import time

import hydra
import torch
from hydra import compose, initialize_config_dir

from captcha_robustness.commands.cli import CONFIG_DIR
from machine import describe

MODELS = ["seed_cnn", "multihead_cnn", "multihead_cnn_large", "multihead_cnn_hires", "multihead_cnn_deep",
          "multihead_cnn_glimpse"]


def build(name: str, device: str) -> torch.nn.Module:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"model={name}"])
    return hydra.utils.instantiate(cfg.model).to(device)


def train_rate(model: torch.nn.Module, images, labels, seconds: float, bf16: bool = False) -> float:
    model.train()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(images)
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, 10), labels.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        count += len(images)
    if images.is_cuda:
        torch.cuda.synchronize()
    return count / (time.perf_counter() - start)


def infer_rate(model: torch.nn.Module, images, seconds: float, bf16: bool = False) -> float:
    model.eval()
    count, start = 0, time.perf_counter()
    with torch.inference_mode(), torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=bf16):
        while time.perf_counter() - start < seconds:
            model(images)
            count += len(images)
    if images.is_cuda:
        torch.cuda.synchronize()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--infer-batch", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=4.0, help="per model, round and mode")
    parser.add_argument("--bf16", action="store_true", help="also the multi-head models under bf16 autocast")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    # (name, bf16): each model once in float32, the multi-head ones again in bf16 when asked
    runs = [(name, False) for name in MODELS] + [(name, True) for name in MODELS[1:] if args.bf16]
    models = {name: build(name, device) for name in MODELS}
    x = torch.rand(args.batch, 1, 100, 110, device=device)
    y = torch.randint(0, 10, (args.batch, 4), device=device)
    x_infer = torch.rand(args.infer_batch, 1, 100, 110, device=device)
    print(describe())
    print(f"device={device}, train batch={args.batch}, "
          f"inference batch={args.infer_batch}, rounds={args.rounds}")
    results: dict[tuple[str, bool, str], list[float]] = {}
    for name, bf16 in runs:  # warm-up
        train_rate(models[name], x, y, 1.0, bf16), infer_rate(models[name], x_infer, 1.0, bf16)
    for _ in range(args.rounds):
        for name, bf16 in runs:
            results.setdefault((name, bf16, "train"), []).append(train_rate(models[name], x, y, args.seconds, bf16))
            results.setdefault((name, bf16, "infer"), []).append(infer_rate(models[name], x_infer, args.seconds, bf16))
    base = {mode: statistics.median(results[(MODELS[0], False, mode)]) for mode in ("train", "infer")}
    print(f"\n{'model':<28}{'params':>12}{'train img/s':>14}{'ratio':>8}{'infer img/s':>14}{'ratio':>8}")
    for name, bf16 in runs:
        train, infer = (statistics.median(results[(name, bf16, mode)]) for mode in ("train", "infer"))
        params = sum(p.numel() for p in models[name].parameters())
        print(f"{name + (' (bf16)' if bf16 else ''):<28}{params:>12,}{train:>14,.0f}{train / base['train']:>7.1f}x"
              f"{infer:>14,.0f}{infer / base['infer']:>7.1f}x")


if __name__ == "__main__":
    main()
