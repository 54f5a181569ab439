"""Training and inference throughput of the models, side by side in one process, in
alternating rounds (these machines are noisy; medians are reported).

    uv run python scripts/bench_models.py [--rounds 3] [--batch 64] [--infer-batch 256]

Training: forward + backward + AdamW step on a fixed batch (rendering excluded: it is the
same for every model and measured by bench_synthesis.py). Inference: forward in
inference mode. Both at the default 100 x 110 input with 4 digits, on the CPU unless a GPU
is present.
"""

from __future__ import annotations

import argparse
import statistics
import time

import hydra
import torch
from omegaconf import OmegaConf

from captcha_robustness.cli import CONFIG_DIR

MODELS = ["seed_cnn", "multihead_cnn"]


def build(name: str, device: str) -> torch.nn.Module:
    cfg = OmegaConf.load(f"{CONFIG_DIR}/model/{name}.yaml")
    cfg = OmegaConf.merge({"data": {"render": {"num_digits": 4, "height": 100, "width": 110}}}, {"model": cfg})
    return hydra.utils.instantiate(cfg.model).to(device)


def train_rate(model: torch.nn.Module, images, labels, seconds: float) -> float:
    model.train()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        loss = torch.nn.functional.cross_entropy(model(images).reshape(-1, 10), labels.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        count += len(images)
    if images.is_cuda:
        torch.cuda.synchronize()
    return count / (time.perf_counter() - start)


def infer_rate(model: torch.nn.Module, images, seconds: float) -> float:
    model.eval()
    count, start = 0, time.perf_counter()
    with torch.inference_mode():
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
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    models = {name: build(name, device) for name in MODELS}
    x = torch.rand(args.batch, 1, 100, 110, device=device)
    y = torch.randint(0, 10, (args.batch, 4), device=device)
    x_infer = torch.rand(args.infer_batch, 1, 100, 110, device=device)
    print(f"device={device}, torch threads={torch.get_num_threads()}, train batch={args.batch}, "
          f"inference batch={args.infer_batch}, rounds={args.rounds}")
    results: dict[tuple[str, str], list[float]] = {}
    for name, model in models.items():  # warm-up
        train_rate(model, x, y, 1.0), infer_rate(model, x_infer, 1.0)
    for _ in range(args.rounds):
        for name, model in models.items():
            results.setdefault((name, "train"), []).append(train_rate(model, x, y, args.seconds))
            results.setdefault((name, "infer"), []).append(infer_rate(model, x_infer, args.seconds))
    base = {mode: statistics.median(results[(MODELS[0], mode)]) for mode in ("train", "infer")}
    print(f"\n{'model':<16}{'params':>12}{'train img/s':>14}{'ratio':>8}{'infer img/s':>14}{'ratio':>8}")
    for name, model in models.items():
        train, infer = (statistics.median(results[(name, mode)]) for mode in ("train", "infer"))
        params = sum(p.numel() for p in model.parameters())
        print(f"{name:<16}{params:>12,}{train:>14,.0f}{train / base['train']:>7.1f}x"
              f"{infer:>14,.0f}{infer / base['infer']:>7.1f}x")


if __name__ == "__main__":
    main()
