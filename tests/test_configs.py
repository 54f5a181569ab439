"""The config groups and recipes: they compose, stay flat, and accept the old spellings."""

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from captcha_robustness.commands.cli import CONFIG_DIR, RENAMED, renamed_overrides
from captcha_robustness.training import components

CONF = Path(CONFIG_DIR)
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def compose_train(*overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_the_recipes_the_docs_name_are_there():
    assert {"quickstart", "recipe_15min", "recipe_60min", "recipe_60min_finetune", "reference_regime",
            "seed_cnn_replication"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_recipe_composes_and_sets_what_it_says(name, monkeypatch):
    monkeypatch.setattr(components, "has_native_bf16", lambda: True)
    components.fast_precision.cache_clear()
    cfg = compose_train(f"experiment={name}")
    resolved = OmegaConf.to_container(cfg, resolve=False)
    assert resolved["model"]["_target_"].startswith("captcha_robustness.models.")
    recipe = yaml.safe_load((CONF / "experiment" / f"{name}.yaml").read_text())
    for key in ("trainer", "data", "optimizer"):
        for field, value in (recipe.get(key) or {}).items():
            if not isinstance(value, dict) and not str(value).startswith("${"):
                assert OmegaConf.select(cfg, f"{key}.{field}") == value, (key, field)


def test_the_hour_and_fifteen_minute_recipes_pick_their_precision_from_the_cpu(monkeypatch):
    for native, expected in ((True, "bf16-mixed"), (False, "32-true")):
        monkeypatch.setattr(components, "has_native_bf16", lambda native=native: native)
        components.fast_precision.cache_clear()
        for name in ("recipe_15min", "recipe_60min", "recipe_60min_finetune"):
            assert compose_train(f"experiment={name}").trainer.precision == expected
    components.fast_precision.cache_clear()


def test_native_bf16_is_read_from_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(components.torch.cuda, "is_available", lambda: False)
    for flags, native in (({"avx2", "avx512f"}, False), ({"avx512f", "avx512_bf16"}, True), ({"amx_bf16"}, True)):
        monkeypatch.setattr(components, "_cpu_flags", lambda flags=flags: flags)
        assert components.has_native_bf16() is native


def test_the_replication_recipe_trains_at_the_reference_s_schedule_as_the_study_s_step_does_shorter():
    cfg = compose_train("experiment=seed_cnn_replication")
    study = yaml.safe_load((CONF / "study" / "full.yaml").read_text())["replication"]
    assert cfg.model._target_.endswith("SeedCNN") and cfg.noise.level == [0.2, 0.3, 0.4]
    assert cfg.data.train_size * cfg.trainer.max_epochs == 500_000 and cfg.data.batch_size == 64
    assert cfg.data.render.layout == "reference" and cfg.data.augment.layouts is None
    assert "scheduler" not in cfg and "scheduler=null" in study["train"]
    for override in study["train"]:
        key, _, value = override.partition("=")
        if key not in ("scheduler", "data.train_size", "trainer.max_epochs"):
            assert str(OmegaConf.select(cfg, key)) == value, key


def test_model_configs_inherit_at_most_one_level():
    for path in (CONF / "model").glob("*.yaml"):
        parents = [d for d in (yaml.safe_load(path.read_text()).get("defaults") or []) if d != "_self_"]
        for parent in parents:
            assert not yaml.safe_load((CONF / "model" / f"{parent}.yaml").read_text()).get("defaults"), path.name


def test_config_comments_quote_no_results():
    for path in CONF.rglob("*.yaml"):
        text = path.read_text()
        assert "%" not in text.replace("%Y-%m-%d_%H-%M-%S", ""), path


def test_loggers_callbacks_and_scheduler_are_config_groups():
    cfg = compose_train("logger=[csv,mlflow]")
    assert set(cfg.logger) == {"csv", "mlflow"}
    assert set(compose_train().logger) == {"csv", "tensorboard"}
    assert set(compose_train("logger=[]").get("logger") or {}) == set()
    assert {"model_checkpoint", "last_checkpoint", "data_wait", "elapsed_time", "lr_monitor"} <= set(cfg.callbacks)
    assert cfg.scheduler._target_.endswith("OneCycleLR") and "scheduler" not in compose_train("~scheduler")


def test_old_override_spellings_become_the_new_paths():
    old = ["ema_decay=0.999", "members=2", "+label_smoothing=0.1", "mutual_weight=0", "checkpoint.monitor=step",
           "checkpoint.mode=min", "loggers=[csv]", "scheduler=null", "logger=null", "~ema_decay", "seed=1"]
    assert renamed_overrides(old) == [
        "training.ema_decay=0.999", "training.members=2", "training.label_smoothing=0.1", "training.mutual_weight=0",
        "callbacks.model_checkpoint.monitor=step", "callbacks.model_checkpoint.mode=min", "logger=[csv]",
        "~scheduler", "logger=[]", "~training.ema_decay", "seed=1"]
    cfg = compose_train(*renamed_overrides(["ema_decay=0.999", "members=2", "checkpoint.monitor=step"]))
    assert cfg.training.ema_decay == 0.999 and cfg.training.members == 2
    assert cfg.callbacks.model_checkpoint.monitor == "step"
    for new in RENAMED.values():
        assert OmegaConf.select(compose_train(), new.split("=")[0], default="absent") != "absent" or new == "logger"
