"""captcha-study: the whole study in one command, as a sequence of the documented commands
(each printed before it runs), into one folder:

    uv run captcha-study                 # study=full: full MNIST, writes multirun/study/full
    uv run captcha-study study=smoke     # the same pipeline in a few minutes

Steps: train/ (one model per training-noise regime), train_seed_cnn/ (the reference model
under its regime), eval/ and eval_seed_cnn/ (every model over the test-noise grid),
tesseract/ and ocrspace/ (OCR on a subsample), analysis/ (captcha-analyze over all of it).
study.json records the command, the commit and each step's wall time. Re-running continues
where it stopped: sweeps skip finished jobs, an interrupted training resumes from last.ckpt.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from captcha_robustness.commands.cli import override_list
from captcha_robustness.data.settings import RenderConfig
from captcha_robustness.errors import ConfigError
from captcha_robustness.files import read_json, write_json
from captcha_robustness.solvers.ocrspace import api_key

COMMANDS = {"train": "captcha-train", "evaluate": "captcha-eval", "analyze": "captcha-analyze"}


class StepFailed(Exception):
    pass


def best_checkpoints(train_sweep: Path) -> list[str]:
    """The best checkpoint (else the last) of every job of a finished training sweep."""
    plan = json.loads((train_sweep / "sweep.json").read_text())["jobs"]
    paths = []
    for num in range(len(plan)):
        metrics = json.loads((train_sweep / str(num) / "metrics.json").read_text())
        paths.append(os.path.relpath(metrics["best_checkpoint"] or metrics["last_checkpoint"]))
    return paths


def _commit(out: Path) -> dict[str, object]:
    """HEAD, and whether tracked files differ from it (the study's own committed outputs excluded)."""
    def git(*args: str) -> str | None:
        done = subprocess.run(["git", *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    inside = top is not None and out.resolve().is_relative_to(Path(top).resolve())
    exclude = ["--", ":/", f":(exclude){out.resolve()}"] if inside else []
    changed = git("status", "--porcelain", "--untracked-files=no", *exclude)
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_changes": bool(changed) if changed is not None else None}


class StudyLog:
    """study.json: the layout its CAPTCHAs are drawn in, this attempt's command, commit and step
    timings (earlier attempts kept), rewritten atomically after every step."""

    def __init__(self, path: Path, command: str, common: list[str]) -> None:
        self.path = path
        chosen = [o.partition("=")[2] for o in common if o.startswith("data.render.layout=")]
        self.layout = chosen[-1] if chosen else RenderConfig().layout
        earlier = read_json(path) or {}
        self.attempts = [*earlier.get("earlier_attempts", []), *([earlier["attempt"]] if "attempt" in earlier else [])]
        self.attempt = {"command": command, **_commit(path.parent), "started": _now(), "steps": [], "finished": None}
        self._save()

    def run(self, name: str, module: str, args: list[str]) -> None:
        shown = shlex.join([COMMANDS[module], *args])
        print(f"\n== {name}\n+ {shown}", flush=True)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", f"captcha_robustness.commands.{module}", *args])
        seconds = round(time.perf_counter() - start, 1)
        self.attempt["steps"].append({"step": name, "command": shown, "seconds": seconds, "exit": done.returncode})
        self._save()
        if done.returncode != 0:
            raise StepFailed(f"step '{name}' failed (exit {done.returncode}); fix the cause and run the same "
                             f"captcha-study command again to continue")
        print(f"== {name}: {seconds:.0f} s", flush=True)

    def finish(self) -> None:
        self.attempt["finished"] = _now()
        self.attempt["total_seconds"] = round(sum(s["seconds"] for s in self.attempt["steps"]), 1)
        self._save()

    def _save(self) -> None:
        write_json(self.path, {"layout": self.layout, "attempt": self.attempt, "earlier_attempts": self.attempts})


def has_ocrspace_key() -> bool:
    try:
        return bool(api_key())
    except ConfigError:
        return False


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _levels(value: object) -> str:
    return ",".join(map(str, value)) if OmegaConf.is_list(value) else str(value)


def study(cfg: DictConfig) -> None:
    if cfg.study.get("attacks") is not None:
        return adversarial_study(cfg)
    s = cfg.study
    out = Path(cfg.out)
    common, sweeps = override_list(cfg, "study.common"), override_list(cfg, "study.sweeps")
    regimes, train = override_list(cfg, "study.regimes"), override_list(cfg, "study.train")
    replication_train, analyze = override_list(cfg, "study.replication.train"), override_list(cfg, "study.analyze")
    if not regimes:
        raise ConfigError("study.regimes: give at least one training noise (conf/noise/), e.g. [none,sp_mixed]")
    noises = f"noise={','.join(override_list(cfg, 'study.eval.noises'))}"
    log = StudyLog(out / "study.json", shlex.join(["captcha-study", *sys.argv[1:]]), common)
    predictions = [out / "eval"]
    try:
        log.run("train one model per regime", "train", ["-m", f"noise={','.join(regimes)}", *common, *sweeps, *train,
                                                         f"hydra.sweep.dir={out / 'train'}"])
        log.run("evaluate them over the test-noise grid", "evaluate", [
            "-m", f"ckpt_path={','.join(best_checkpoints(out / 'train'))}", noises,
            f"noise.level={_levels(s.eval.levels)}", f"data.test_size={s.eval.test_size}", *common, *sweeps,
            f"hydra.sweep.dir={out / 'eval'}"])
        if s.replication is not None:
            r = s.replication
            log.run(f"train {r.model} under {r.noise} (replication)", "train", [
                "-m", f"model={r.model}", f"noise={r.noise}", *common, *sweeps, *replication_train,
                f"hydra.sweep.dir={out / 'train_seed_cnn'}"])
            log.run(f"evaluate {r.model} over the test-noise grid", "evaluate", [
                "-m", f"ckpt_path={','.join(best_checkpoints(out / 'train_seed_cnn'))}", noises,
                f"noise.level={_levels(s.eval.levels)}", f"data.test_size={r.test_size}", *common, *sweeps,
                f"hydra.sweep.dir={out / 'eval_seed_cnn'}"])
            predictions.append(out / "eval_seed_cnn")
        ocr = [("tesseract", s.tesseract)]
        if has_ocrspace_key():
            ocr.append(("ocrspace", s.ocrspace))
        for solver, settings in ocr:
            if settings is None:
                continue
            log.run(f"{solver} on a subsample", "evaluate", [
                "-m", f"solver={solver}", noises, f"noise.level={_levels(settings.levels)}",
                f"data.test_size={settings.test_size}", *common, *sweeps, f"hydra.sweep.dir={out / solver}"])
            predictions.append(out / solver)
        log.run("analyse everything", "analyze", [
            f"predictions=[{','.join(map(str, predictions))}]", f"out_dir={out / 'analysis'}",
            *analyze])
    except StepFailed as exc:
        sys.exit(f"error: {exc}")
    log.finish()
    print(f"\nstudy done in {log.attempt['total_seconds'] / 60:.1f} min: {out / 'analysis' / 'report.md'}")


def _choices(values: list[str]) -> str:
    return ",".join(values)


def adversarial_study(cfg: DictConfig) -> None:
    """study.attacks set: models trained clean, on random noise, adversarially (PGD) and the
    seed_cnn replication; each attack crafted against each of them (the surrogates) at every
    budget and read by all of them, their ensemble and Tesseract, next to the attack's random
    counterpart at the same levels."""
    s = cfg.study
    out = Path(cfg.out)
    common, train = override_list(cfg, "study.common"), override_list(cfg, "study.train")
    regimes, analyze = override_list(cfg, "study.regimes"), override_list(cfg, "study.analyze")
    log = StudyLog(out / "study.json", shlex.join(["captcha-study", *sys.argv[1:]]), common)
    r = s.replication
    runs = {"train": ["-m", f"noise={_choices(regimes)}", *train],
            "train_adversarial": ["-m", *override_list(cfg, "study.adversarial_training"), *train],
            "train_seed_cnn": ["-m", f"model={r.model}", f"noise={r.noise}",
                               *override_list(cfg, "study.replication.train")]}
    predictions = []
    try:
        for folder, args in runs.items():
            log.run(f"train ({folder})", "train", [*args, *common, f"hydra.sweep.dir={out / folder}"])
        models = [path for folder in runs for path in best_checkpoints(out / folder)]
        readers = [*models, f"[{','.join(models[:-1])}]"]  # and the multi-head models as one ensemble
        steps, size = f"noise.steps={s.steps}", f"data.test_size={s.eval.test_size}"
        for attack, spec in s.attacks.items():
            levels = [float(level) for level in spec.levels]
            random_levels = f"noise.level={_choices(map(str, [0.0, *levels]))}"
            log.run(f"{spec.random} (random counterpart of {attack})", "evaluate", [
                "-m", f"noise={spec.random}", random_levels, *common, size, f"ckpt_path={_choices(readers)}",
                f"hydra.sweep.dir={out / ('eval_' + spec.random)}"])
            # ckpt_path last: the jobs that read one crafted test set follow each other and craft it once
            log.run(f"{attack} against each model, read by every model", "evaluate", [
                "-m", f"noise={attack}", f"noise.surrogate={_choices(models)}",
                f"noise.level={_choices(map(str, levels))}", steps, *common, size, f"ckpt_path={_choices(readers)}",
                f"hydra.sweep.dir={out / ('eval_' + attack)}"])
            predictions += [out / f"eval_{spec.random}", out / f"eval_{attack}"]
            if s.tesseract is None:
                continue
            ocr_size = f"data.test_size={s.tesseract.test_size}"
            log.run(f"tesseract under {spec.random}", "evaluate", [
                "-m", "solver=tesseract", f"noise={spec.random}", random_levels, *common, ocr_size,
                f"hydra.sweep.dir={out / ('tesseract_' + spec.random)}"])
            log.run(f"tesseract under {attack}", "evaluate", [
                "-m", "solver=tesseract", f"noise={attack}", f"noise.surrogate={_choices(models)}",
                f"noise.level={_choices(map(str, levels))}", steps, *common, ocr_size,
                f"hydra.sweep.dir={out / ('tesseract_' + attack)}"])
            predictions += [out / f"tesseract_{spec.random}", out / f"tesseract_{attack}"]
        log.run("analyse everything", "analyze", [
            f"predictions=[{','.join(map(str, predictions))}]", f"out_dir={out / 'analysis'}", *analyze])
    except StepFailed as exc:
        sys.exit(f"error: {exc}")
    log.finish()
    print(f"\nstudy done in {log.attempt['total_seconds'] / 60:.1f} min: {out / 'analysis' / 'report.md'}")


if __name__ == "__main__":
    from captcha_robustness.commands.entry import study

    study()
