"""Every bad input of every command: one line naming the field, exit 2, and nothing left behind
in the folder it ran in. Each case runs the real command in a fresh temp dir."""

import pandas as pd
import pytest
import torch

from captcha_robustness.results.schema import COLUMNS
from clitools import TINY, run

pytestmark = pytest.mark.slow

TWO_EPOCHS = [*TINY[:-3], "trainer.max_epochs=2", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu",
              "data.train_size=64", "logger=null"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """What the cases point at: a checkpoint trained two epochs, folders, an empty table."""
    root = tmp_path_factory.mktemp("inputs")
    result = run(root, "train", *TWO_EPOCHS, "hydra.run.dir=run")
    assert result.returncode == 0, result.stderr[-3000:]
    (root / "empty").mkdir()
    (root / "texts").mkdir()
    (root / "texts" / "notes.txt").write_text("no image here")
    empty = pd.DataFrame({name: pd.Series(dtype=dtype) for name, (dtype, _) in COLUMNS.items()})
    empty.to_parquet(root / "empty.parquet", index=False)
    return root


# (command, arguments ({x} is the inputs folder), the line's start)
CASES = [
    ("train", "trainer.max_epochs=-1", "trainer.max_epochs: must be an integer >= 1 (got -1)"),
    ("train", "optimizer.lr=-1", "optimizer.lr: must be a number >= 0"),
    ("train", "seed=abc", "seed: must be an integer in [0, 4294967295] (got 'abc')"),
    ("train", "seed=-1", "seed: must be an integer"),
    ("train", "nosuchkey=1", "nosuchkey: no such setting"),
    ("train", "+nosuchkey=1", "nosuchkey: no such setting"),
    ("train", "data.augment.nosuch=1", "data.augment.nosuch: no such setting"),
    ("train", "model=foo", "model=foo: unknown; allowed: multihead_cnn"),
    ("train", "scheduler=foo", "scheduler=foo: unknown"),
    ("train", "noise.level=1.5", "noise.level: must be a number in [0, 1]"),
    ("train", "noise=gaussian noise.level=[]", "noise.level: an empty list"),
    ("train", "noise=gaussian noise.level={low:0.5,high:0.1}", "noise.level: range low must be <= high"),
    ("train", "noise.name=foo", "noise.name: unknown noise type 'foo'; allowed: adversarial_l0, adversarial_l2, "
     "adversarial_linf, baseline"),
    ("train", "noise.name=[gaussian,nosuch] noise.level=0.2", "noise.name: unknown noise type 'nosuch'"),
    ("train", "noise=jpeg noise.level=1.2", "noise.level: must be a number in [0, 1]"),
    ("train", "noise=gaussian noise.sigma=abc", "noise.sigma: must be a number (got 'abc')"),
    ("evaluate", "solver=tesseract noise=motion_blur noise.level=-0.1", "noise.level: must be a number in [0, 1]"),
    ("train", "data.batch_size=0", "data.batch_size: must be an integer >= 1 (got 0)"),
    ("train", "data.train_size=1.5", "data.train_size: must be an integer >= 1"),
    ("train", "data.render.num_digits=0", "data.render.num_digits: must be an integer in [1, 16]"),
    ("train", "data.render.layout=bogus", "data.render.layout: must be one of reference, touching (got 'bogus')"),
    ("evaluate", "solver=tesseract data.render.gap_min=6 data.render.gap_max=2",
     "data.render.gap_min/gap_max: must be integers with 0 <= gap_min <= gap_max <= 20 (got 6, 2)"),
    ("train", "data.render.gap_min=-1", "data.render.gap_min/gap_max: must be integers with 0 <= gap_min"),
    ("train", "data.render.overlap_min=5 data.render.overlap_max=1", "data.render.overlap_min/overlap_max: must be"),
    ("train", "data.augment.layouts=[reference,bogus]", "data.augment.layouts: must be null or a non-empty "
     "list of layouts among reference, touching"),
    ("train", "data.augment.slant=2", "data.augment.slant: must be a number in [0, 1]"),
    ("train", "training.ema_decay=1.5", "training.ema_decay: must be null or a number in (0, 1)"),
    ("train", "ema_decay=1.5", "training.ema_decay: must be null or a number in (0, 1)"),
    ("train", "training.members=0", "training.members: must be an integer >= 1"),
    ("train", "trainer.precision=17", "trainer.precision: must be one of 32-true"),
    ("train", "digits.val_fraction=0.6", "digits.val_fraction: must be a number in (0, 0.5)"),
    ("train", "optimizer=sgd optimizer.momentum=1", "optimizer.momentum: must be a number in [0, 1)"),
    ("train", "ckpt_path=missing.ckpt", "ckpt_path: no such file: missing.ckpt"),
    ("train", "trainer=gpu", "trainer.accelerator: gpu, but torch sees no CUDA GPU on this machine"),
    ("train", "ckpt_path={x}/run", "ckpt_path: {x}/run is a folder; give a .ckpt file; it holds checkpoints/"),
    ("train", "ckpt_path={x}/run/checkpoints/last.ckpt init_from={x}/run/checkpoints/last.ckpt",
     "init_from: cannot be combined with ckpt_path"),
    ("train", "init_from={x}/empty", "init_from: {x}/empty is a folder; give a .ckpt file; it holds no .ckpt"),
    ("train", "ckpt_path={x}/run/checkpoints/last.ckpt model.hidden=32",
     "ckpt_path: {x}/run/checkpoints/last.ckpt holds another network than this run's model config "
     "(model.hidden: 256 in the checkpoint, 32 here)"),
    ("train", "ckpt_path={x}/run/checkpoints/last.ckpt trainer.max_epochs=1",
     "trainer.max_epochs: must be at least the 2 epochs that {x}/run/checkpoints/last.ckpt has trained (got 1)"),
    ("train", "ckpt_path={x}/texts/notes.txt", "ckpt_path: {x}/texts/notes.txt is not a checkpoint written by"),
    ("train", "-m noise=gaussian noise.level=0.2,1.5",
     "job 1 (noise=gaussian noise.level=1.5): noise.level: must be a number in [0, 1]"),
    ("train", "-m seed=0,1 trainer.max_epochs=0", "job 0 (seed=0 trainer.max_epochs=0): trainer.max_epochs"),
    ("evaluate", "", "ckpt_path: required with solver=cnn"),
    ("evaluate", "ckpt_path=[]", "ckpt_path: an empty list"),
    ("evaluate", "ckpt_path=[{x}/run/checkpoints/last.ckpt,nope.ckpt]", "ckpt_path: no such file: nope.ckpt"),
    ("evaluate", "ckpt_path={x}/run/checkpoints/last.ckpt member=0", "member: must be null or an integer >= 1"),
    ("evaluate", "solver=ocrspace solver.url=notaurl", "solver.url: must be an http:// or https:// URL"),
    ("evaluate", "solver=ocrspace solver.url=http://127.0.0.1:180000/x", "solver.url: must be an http:// or https"),
    ("evaluate", "solver=ocrspace solver.max_retries=-1", "solver.max_retries: must be an integer >= 0"),
    ("evaluate", "solver=tesseract ocr.height=5", "ocr.height: must be an integer in [16, 1000] (got 5)"),
    ("evaluate", "solver=tesseract solver.workers=-1", "solver.workers: must be an integer >= 0"),
    ("evaluate", "solver=foo", "solver=foo: unknown; allowed: cnn, ocrspace, tesseract"),
    ("evaluate", "solver=tesseract noise=gaussian noise.level=2", "noise.level: must be a number in [0, 1]"),
    ("evaluate", "-m solver=tesseract noise=gaussian noise.level=0.1,0.5,7", "job 2 (solver=tesseract noise=gaussian"),
    ("evaluate", "ckpt_path={x}/run/checkpoints/last.ckpt noise=adversarial_linf",
     "noise.surrogate: noise=adversarial_linf is crafted against a solver; give the .ckpt"),
    ("evaluate", "ckpt_path={x}/run/checkpoints/last.ckpt noise=adversarial_l0 noise.surrogate=missing.ckpt",
     "noise.surrogate: no such file: missing.ckpt"),
    ("evaluate", "ckpt_path={x}/run/checkpoints/last.ckpt noise=adversarial_l0 noise.surrogate={x}/texts/notes.txt",
     "noise.surrogate: {x}/texts/notes.txt is not a checkpoint written by captcha-train"),
    ("evaluate", "ckpt_path={x}/run/checkpoints/last.ckpt noise=adversarial_l0 "
     "noise.surrogate={x}/run/checkpoints/last.ckpt data.render.width=120",
     "noise.surrogate: {x}/run/checkpoints/last.ckpt reads CAPTCHAs of num_digits, height, width = (4, 100, 110)"),
    ("evaluate", "solver=tesseract noise=adversarial_linf noise.surrogate={x}/run/checkpoints/last.ckpt "
     "noise.level=[0.1,0.2]", "noise.name: adversarial_linf is crafted at one budget"),
    ("evaluate", "solver=tesseract noise=adversarial_linf noise.surrogate={x}/run/checkpoints/last.ckpt "
     "noise.steps=0.5", "noise.steps: must be a whole number of attack steps >= 1"),
    ("train", "experiment=adversarial_training training.adversarial.level=2",
     "training.adversarial.level: must be a number in (0, 1]"),
    ("train", "experiment=adversarial_training training.adversarial.noise=gaussian",
     "training.adversarial.noise: must be one of adversarial_l0, adversarial_l2, adversarial_linf"),
    ("predict", "", "ckpt_path: required"),
    ("predict", "ckpt_path={x}/run/checkpoints/last.ckpt images={x}/empty", "images: the folder {x}/empty is empty"),
    ("predict", "ckpt_path={x}/run/checkpoints/last.ckpt images={x}/texts",
     "images: the folder {x}/texts holds no .png, .jpg or .jpeg file"),
    ("predict", "ckpt_path={x}/run/checkpoints/last.ckpt images=nomatch/*.png", "images: no file matches nomatch/*.png"),
    ("predict", "ckpt_path={x}/run/checkpoints/last.ckpt images=missing.png", "images: no such file or folder"),
    ("predict", "ckpt_path={x}/run images={x}/texts", "ckpt_path: {x}/run is a folder"),
    ("predict", "ckpt_path={x}/run/checkpoints/last.ckpt images={x}/texts batch_size=0", "batch_size: must be"),
    ("render_grid", "grid.levels=[2]", "grid.levels: must be a number in [0, 1] (got 2)"),
    ("render_grid", "grid.levels=[]", "grid.levels: must be a non-empty list"),
    ("render_grid", "grid.split=foo", "grid.split: must be one of train, val, test (got 'foo')"),
    ("render_grid", "grid.count=0", "grid.count: must be an integer in [1, 64] (got 0)"),
    ("render_grid", "grid.noises=[gaussian,foo]", "grid.noises: must be one of baseline, contrast, defocus, digit_size"),
    ("render_grid", "grid.by=foo", "grid.by: must be one of captcha, level (got 'foo')"),
    ("analyze", "", "predictions: required"),
    ("analyze", "predictions=missing", "predictions: no such file or folder: missing"),
    ("analyze", "predictions={x}/empty.parquet", "predictions: {x}/empty.parquet: no rows to analyse"),
    ("analyze", "predictions={x}/empty.parquet bootstrap=-1", "bootstrap: must be an integer in [0, 100000]"),
    ("study", "study=foo", "study=foo: unknown; allowed: adversarial, adversarial_smoke, corruptions, corruptions_smoke"),
    ("commands.recipe", "recipe.threads=-1", "recipe.threads: must be an integer >= 0"),
    ("commands.collect", "missing", "sweeps: missing is not a sweep folder"),
    ("commands.report", "missing", "folder: missing holds no summary.csv"),
]


@pytest.mark.parametrize("command, arguments, expected", CASES, ids=[f"{c}:{a}" for c, a, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(inputs, tmp_path, command, arguments, expected):
    if "trainer=gpu" in arguments and torch.cuda.is_available():
        pytest.skip("this machine has the GPU that the case asks for")
    args = [a.replace("{x}", str(inputs)) for a in arguments.split()]
    result = run(tmp_path, command, *args)
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("error: " + expected.replace("{x}", str(inputs))), lines[0]
    assert list(tmp_path.iterdir()) == [], sorted(p.name for p in tmp_path.rglob("*"))


def test_there_are_at_least_forty_cases():
    assert len(CASES) >= 40
