"""A command's whole config checked before it imports torch or Lightning or writes a file:
every number against validate.FIELDS, the data settings, the files it will read, the OCR
URL, and a checkpoint to resume against the run that resumes it. Each problem is one
ConfigError naming the field (exit 2); no torch here, except to read a checkpoint."""

from __future__ import annotations

import functools

import glob
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from omegaconf import DictConfig, OmegaConf

from captcha_robustness.config_dir import configured_noise_types
from captcha_robustness.data.settings import Augment, RenderConfig, dataclass_from, parse_noise
from captcha_robustness.errors import ConfigError
from captcha_robustness.validate import FIELDS, check_field, number, one_of

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
PRECISIONS = ("32-true", "32", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true", "64")
_ABSENT = object()


def check_config(config_name: str, cfg: DictConfig) -> None:
    """Raise the first ConfigError of `cfg`, the composed config of `conf/<config_name>.yaml`."""
    for field in FIELDS:
        value = _select(cfg, field)
        if value is not _ABSENT:
            check_field(field, value)
    if "data" in cfg and "render" in cfg.data:
        check_data(cfg)
    COMMAND_CHECKS.get(config_name, lambda cfg: None)(cfg)


def _select(cfg: DictConfig, field: str) -> Any:
    """The resolved value at `field`, as plain Python, or _ABSENT where there is none."""
    try:
        value = OmegaConf.select(cfg, field, default=_ABSENT, throw_on_missing=True)
    except Exception:  # noqa: BLE001 - a missing value or a path through a non-container: nothing to check
        return _ABSENT
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def check_data(cfg: DictConfig) -> None:
    dataclass_from("data.render", RenderConfig, _select(cfg, "data.render"))
    dataclass_from("data.augment", Augment, _select(cfg, "data.augment"))
    noise = _select(cfg, "noise")
    if isinstance(noise, dict) and parse_noise(noise, configured_noise_types())[3]:
        render = _select(cfg, "data.render")
        shape = (render.get("num_digits"), render.get("height"), render.get("width"))
        for path in checkpoint_files(noise["surrogate"], "noise.surrogate"):
            surrogate_shape = checkpoint_shape(str(path))
            if surrogate_shape != shape:
                raise ConfigError(f"noise.surrogate: {path} reads CAPTCHAs of num_digits, height, width = "
                                  f"{surrogate_shape}, these are {shape}; give a checkpoint trained on this data.render")


@functools.cache
def checkpoint_shape(path: str) -> tuple[int, int, int]:
    """(num_digits, height, width) of the CAPTCHAs a checkpoint reads, or one line naming noise.surrogate."""
    import torch  # only a run with a surrogate pays for it

    try:
        hparams = torch.load(path, map_location="cpu", weights_only=False, mmap=True)["hyper_parameters"]
        return (int(hparams["num_digits"]), *map(int, hparams["image_size"]))
    except Exception as exc:  # noqa: BLE001 - any failure to read is the same user error
        raise ConfigError(f"noise.surrogate: {path} is not a checkpoint written by captcha-train "
                          f"({type(exc).__name__})") from exc


def check_accelerator(cfg: DictConfig) -> None:
    """trainer.accelerator=gpu (trainer=gpu) on a machine whose torch sees no CUDA GPU."""
    if str(OmegaConf.select(cfg, "trainer.accelerator")) in ("gpu", "cuda"):
        import torch  # only a run that asks for a GPU pays for it

        if not torch.cuda.is_available():
            raise ConfigError("trainer.accelerator: gpu, but torch sees no CUDA GPU on this machine; use "
                              "trainer.accelerator=cpu, or trainer=default to take what the machine has")


def check_train(cfg: DictConfig) -> None:
    check_accelerator(cfg)
    precision = OmegaConf.select(cfg, "trainer.precision")
    if not OmegaConf.is_interpolation(cfg.trainer, "precision"):
        one_of("trainer.precision", str(precision), PRECISIONS)
    if cfg.ckpt_path and cfg.init_from:
        raise ConfigError("init_from: cannot be combined with ckpt_path (which resumes a run); pass one")
    adversarial = _select(cfg, "training.adversarial")
    if isinstance(adversarial, dict):
        one_of("training.adversarial.noise", adversarial.get("noise"),
               sorted(name for name, params in configured_noise_types().items() if "surrogate" in params))
    if cfg.init_from:
        checkpoint_file("init_from", cfg.init_from)
    if cfg.ckpt_path:
        check_resume(cfg, checkpoint_file("ckpt_path", cfg.ckpt_path))


def check_eval(cfg: DictConfig) -> None:
    solver = cfg.solver.name
    if solver == "cnn":
        check_accelerator(cfg)
        if cfg.ckpt_path is None:
            raise ConfigError("ckpt_path: required with solver=cnn: a .ckpt written by captcha-train, e.g. "
                              "ckpt_path=outputs/train/RUN/checkpoints/last.ckpt (or solver=tesseract|ocrspace)")
        checkpoint_files(cfg.ckpt_path)
    elif solver == "ocrspace":
        check_url("solver.url", cfg.solver.url)


def check_predict(cfg: DictConfig) -> None:
    for field in ("ckpt_path", "images"):
        if OmegaConf.is_missing(cfg, field):
            raise ConfigError(f"{field}: required; e.g. captcha-predict ckpt_path=run/checkpoints/last.ckpt "
                              f"images=captchas/")
    checkpoint_files(cfg.ckpt_path)
    find_images(str(cfg.images))


def check_render(cfg: DictConfig) -> None:
    one_of("grid.split", cfg.grid.split, ("train", "val", "test"))
    one_of("grid.by", cfg.grid.by, ("captcha", "level"))
    noises = _select(cfg, "grid.noises")
    for name in noises if isinstance(noises, list) else [noises]:
        one_of("grid.noises", name, [*sorted(t for t, params in configured_noise_types().items()
                                             if t != "none" and "surrogate" not in params), "all"])
    levels = _select(cfg, "grid.levels")
    levels = levels if isinstance(levels, list) else [levels]
    if not levels:
        raise ConfigError(f"grid.levels: must be a non-empty list of noise levels in [0, 1], e.g. '[0.1,0.5]' "
                          f"(got {levels!r})")
    for level in levels:
        number("grid.levels", level, low=0, high=1)


def check_analyze(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "predictions"):
        raise ConfigError("predictions: required; a predictions table or a sweep folder, "
                          "e.g. predictions=multirun/eval/RUN")
    paths = _select(cfg, "predictions")
    for path in paths if isinstance(paths, list) else [paths]:
        if not Path(str(path)).exists():
            raise ConfigError(f"predictions: no such file or folder: {path}")


COMMAND_CHECKS: dict[str, Callable[[DictConfig], None]] = {
    "train": check_train, "eval": check_eval, "predict": check_predict, "render": check_render,
    "analyze": check_analyze,
}


def checkpoint_file(field: str, value: Any) -> Path:
    """`value` as the path of an existing file, or one line saying what it is instead."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{field}: must be the path of a .ckpt written by captcha-train (got {value!r})")
    path = Path(value)
    if path.is_dir():
        found = sorted(str(p.relative_to(path)) for pattern in ("*.ckpt", "checkpoints/*.ckpt")
                       for p in path.glob(pattern))[:3]
        hint = f"; it holds {', '.join(found)}" if found else "; it holds no .ckpt file"
        raise ConfigError(f"{field}: {path} is a folder; give a .ckpt file{hint}")
    if not path.is_file():
        raise ConfigError(f"{field}: no such file: {path}")
    return path


def checkpoint_files(value: Any, field: str = "ckpt_path") -> list[Path]:
    """`ckpt_path` of eval and predict (or `noise.surrogate`): one checkpoint, or a non-empty
    list (an ensemble)."""
    paths = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    if isinstance(paths, list):
        if not paths:
            raise ConfigError(f"{field}: an empty list; give a .ckpt, or a list of them for an ensemble")
        return [checkpoint_file(field, path) for path in paths]
    return [checkpoint_file(field, paths)]


def check_url(field: str, url: Any) -> str:
    """`url` if it is an http(s) URL with a host and a valid port, else one line."""
    allowed = "an http:// or https:// URL with a host, e.g. https://api.ocr.space/parse/image"
    try:
        parts = urlsplit(str(url))
        port = parts.port  # ValueError when outside 0-65535 or not a number
    except ValueError as exc:
        raise ConfigError(f"{field}: must be {allowed} and a port in 1-65535 ({exc}; got {url!r})") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{field}: must be {allowed} (got {url!r})")
    if port == 0:
        raise ConfigError(f"{field}: the port must be in 1-65535 (got {url!r})")
    return str(url)


def find_images(pattern: str) -> list[Path]:
    """The image files a `images=` value names: a file, a folder's PNG/JPEG files, or a glob."""
    path = Path(pattern)
    if glob.has_magic(pattern):
        found = sorted(p for p in map(Path, glob.glob(pattern, recursive=True)) if p.is_file())
        if not found:
            raise ConfigError(f"images: no file matches {pattern}")
        return found
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            what = "is empty" if not any(path.iterdir()) else "holds no .png, .jpg or .jpeg file"
            raise ConfigError(f"images: the folder {path} {what}")
        return found
    if not path.is_file():
        raise ConfigError(f"images: no such file or folder: {path}")
    return [path]


def check_resume(cfg: DictConfig, path: Path) -> None:
    """A checkpoint to resume must hold this run's network and fewer epochs than it will train."""
    import torch  # only a resumed run pays for it

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        theirs = checkpoint["hyper_parameters"]["model"]
    except Exception as exc:  # noqa: BLE001 - any failure to read is the same user error
        raise ConfigError(f"ckpt_path: {path} is not a checkpoint written by captcha-train "
                          f"({type(exc).__name__})") from exc
    difference = first_difference(theirs, OmegaConf.to_container(cfg.model, resolve=True), "model")
    if difference:
        raise ConfigError(f"ckpt_path: {path} holds another network than this run's model config ({difference}); "
                          f"resume with the model it was trained with, or start a new run from it with init_from=")
    done = checkpoint.get("epoch", -1) + 1
    if cfg.trainer.max_epochs < done:
        raise ConfigError(f"trainer.max_epochs: must be at least the {done} epochs that {path} has trained "
                          f"(got {cfg.trainer.max_epochs})")


def first_difference(theirs: Any, ours: Any, where: str) -> str | None:
    """The first path at which two plain configs differ, with both values, or None."""
    if isinstance(theirs, dict) and isinstance(ours, dict):
        for key in sorted(set(theirs) | set(ours), key=str):
            found = first_difference(theirs.get(key, _ABSENT), ours.get(key, _ABSENT), f"{where}.{key}")
            if found:
                return found
        return None
    if theirs == ours:
        return None
    show = lambda v: "absent" if v is _ABSENT else repr(v)  # noqa: E731
    return f"{where}: {show(theirs)} in the checkpoint, {show(ours)} here"
