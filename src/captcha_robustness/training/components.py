"""Loggers and callbacks built from their config groups (conf/logger/, conf/callbacks/), and
the precision a recipe asks for where it depends on the machine."""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.loggers import Logger, TensorBoardLogger

from captcha_robustness.errors import ConfigError


def instantiate_each(group: DictConfig | None) -> dict[str, Any]:
    """Every entry of a config group with a `_target_`, instantiated, by its key; entries
    whose factory returns None (a logger that is not installed) are left out."""
    built = {}
    for name, entry in (group or {}).items():
        if isinstance(entry, DictConfig) and "_target_" in entry:
            obj = hydra.utils.instantiate(entry)
            if obj is not None:
                built[name] = obj
    return built


def tensorboard_if_installed(save_dir: str, name: str, version: str) -> TensorBoardLogger | None:
    """TensorBoard's logger where tensorboard (or tensorboardX) is installed, else None: it is
    in the default logger set but not a dependency."""
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        return TensorBoardLogger(save_dir, name=name, version=version)
    return None


def mlflow_logger(tracking_uri: str, **kwargs: Any) -> Logger:
    """Lightning's MLFlowLogger on a local file store (`file:` URI), which MLflow 3 keeps only
    on request; one line when the optional extra is missing."""
    if not importlib.util.find_spec("mlflow"):
        raise ConfigError("logger.mlflow: MLflow is not installed; install the extra: uv sync --extra mlflow")
    from pytorch_lightning.loggers import MLFlowLogger

    if tracking_uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MLFlowLogger(tracking_uri=tracking_uri, **kwargs)


def build_callbacks(group: DictConfig | None, loggers: list[Logger]) -> dict[str, Any]:
    """The callbacks of `group` by name; a learning-rate monitor only when something logs."""
    callbacks = instantiate_each(group)
    if not loggers:
        callbacks = {k: v for k, v in callbacks.items() if not isinstance(v, LearningRateMonitor)}
    return callbacks


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith(("flags", "Features"))), "")
    return set(line.partition(":")[2].split())


def has_native_bf16() -> bool:
    """Whether bfloat16 arithmetic is fast here: a CUDA device, or a CPU with AVX512_BF16 or
    AMX. On other CPUs PyTorch emulates it, slower than float32."""
    return torch.cuda.is_available() or bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


@functools.cache
def fast_precision() -> str:
    """`${fast_precision:}` in a recipe: bf16-mixed where it is native, else 32-true, said once."""
    if has_native_bf16():
        return "bf16-mixed"
    print("note: trainer.precision: this CPU has no native bfloat16 (AVX512_BF16 or AMX), so the recipe "
          "trains in float32 (32-true), about twice as long as on a CPU with it (docs/benchmarks.md)",
          file=sys.stderr)
    return "32-true"
