"""Adversarial noise: budgets held exactly, crafting deterministic per CAPTCHA, a tiny model that
falls far faster to crafted noise than to random noise of the same budget, PGD training, and
the analysis's white-box / transfer split."""

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from captcha_robustness.analysis.adversarial import as_conditions, crafted_damage, roles, split_adversarial
from captcha_robustness.data.adversarial import BLOCK, Surrogate, l0_count
from captcha_robustness.data.datamodule import CaptchaDataModule
from captcha_robustness.data.digits import Mnist5kDigits
from captcha_robustness.data.noise import NoiseConfig
from captcha_robustness.data.render import patch_size
from captcha_robustness.data.settings import RenderConfig
from captcha_robustness.data.synth import CaptchaSynth
from captcha_robustness.errors import ConfigError
from captcha_robustness.models.module import CaptchaModule

RENDER = RenderConfig(num_digits=2)
MODEL = {"_target_": "captcha_robustness.models.multihead_cnn.MultiHeadCNN", "num_digits": 2, "height": 100,
         "width": 110}
ADAMW = {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 0.003}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A 2-digit model trained for 150 steps (it reads most clean CAPTCHAs), saved as a checkpoint."""
    pl.seed_everything(0)
    dm = CaptchaDataModule(Mnist5kDigits(), render={"num_digits": 2}, train_size=32 * 150, val_size=64,
                           test_size=64, batch_size=32)
    solver = CaptchaModule(MODEL, ADAMW, num_digits=2)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
                         limit_val_batches=0, default_root_dir=tmp_path_factory.mktemp("surrogate"))
    trainer.fit(solver, datamodule=dm)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    trainer.save_checkpoint(path)
    return str(path), solver.eval()


@pytest.fixture(scope="module")
def two_digit_synth(splits):
    return CaptchaSynth(splits.test, patch_size(splits.train.images, RENDER), "test", 0, RENDER, NoiseConfig())


def crafted(synth, checkpoint, name, level, ids, steps=5):
    return synth.with_noise(NoiseConfig(name, level, {"steps": float(steps)}, (checkpoint[0],)))(ids)


def accuracy(model, batch):
    with torch.no_grad():
        return (model(batch["image"]).argmax(-1) == batch["label"]).all(1).float().mean().item()


@pytest.mark.parametrize("level", [0.02, 0.1])
def test_linf_moves_no_pixel_by_more_than_the_budget(two_digit_synth, checkpoint, level):
    ids = torch.arange(48)
    clean, attacked = two_digit_synth(ids)["image"], crafted(two_digit_synth, checkpoint, "adversarial_linf", level, ids)
    change = (attacked["image"] - clean).abs()
    assert change.max() <= level + 1e-6
    assert change.max() > 0.9 * level  # it uses the budget
    assert attacked["image"].min() >= 0 and attacked["image"].max() <= 1


@pytest.mark.parametrize("level", [0.001, 0.01])
def test_l0_sets_at_most_its_share_of_pixels_and_only_to_0_or_1(two_digit_synth, checkpoint, level):
    ids = torch.arange(48)
    clean, attacked = two_digit_synth(ids)["image"], crafted(two_digit_synth, checkpoint, "adversarial_l0", level, ids)
    changed = (attacked["image"] != clean).flatten(1)
    assert changed.sum(1).max() <= l0_count(level, clean[0].numel())
    assert changed.sum(1).max() >= 0.5 * l0_count(level, clean[0].numel())
    values = attacked["image"].flatten(1)[changed]
    assert ((values == 0) | (values == 1)).all()


def test_l2_keeps_the_root_mean_square_change_within_the_budget(two_digit_synth, checkpoint):
    ids = torch.arange(32)
    clean = two_digit_synth(ids)["image"]
    attacked = crafted(two_digit_synth, checkpoint, "adversarial_l2", 0.05, ids)["image"]
    rms = (attacked - clean).flatten(1).pow(2).mean(1).sqrt()
    assert rms.max() <= 0.05 + 1e-5 and rms.min() > 0.02
    assert attacked.min() >= 0 and attacked.max() <= 1


@pytest.mark.parametrize("name", ["adversarial_l0", "adversarial_linf"])
def test_the_same_ids_give_the_same_images_in_any_batch(two_digit_synth, checkpoint, name):
    ids = torch.tensor([3, BLOCK + 5, 7])
    first = crafted(two_digit_synth, checkpoint, name, 0.05, ids)
    crafted(two_digit_synth, checkpoint, "adversarial_linf" if name == "adversarial_l0" else "adversarial_l0", 0.05,
            ids)  # another condition in between empties the cache
    alone = crafted(two_digit_synth, checkpoint, name, 0.05, torch.tensor([BLOCK + 5]))
    again = crafted(two_digit_synth, checkpoint, name, 0.05, ids)
    assert torch.equal(first["image"], again["image"])
    assert torch.equal(first["image"][1], alone["image"][0])
    assert torch.equal(first["label"], two_digit_synth(ids)["label"])
    other_seed = CaptchaSynth(two_digit_synth.pool, two_digit_synth.patch, "test", 1, RENDER, NoiseConfig())
    assert not torch.equal(crafted(other_seed, checkpoint, name, 0.05, ids)["image"], first["image"])


def test_level_0_is_the_clean_captcha_with_ssim_1(two_digit_synth, checkpoint):
    ids = torch.arange(8)
    batch = crafted(two_digit_synth, checkpoint, "adversarial_linf", 0.0, ids)
    assert torch.equal(batch["image"], two_digit_synth(ids)["image"])
    assert torch.allclose(batch["ssim"], torch.ones(8))


def test_a_tiny_model_falls_far_faster_to_crafted_noise_than_to_random_noise(two_digit_synth, checkpoint):
    model = checkpoint[1]
    ids = torch.arange(128)
    clean = accuracy(model, two_digit_synth(ids))
    assert clean > 0.5
    for attack, random, level in [("adversarial_linf", "uniform", 0.05), ("adversarial_l0", "salt_and_pepper", 0.005)]:
        noisy = accuracy(model, two_digit_synth.with_noise(NoiseConfig(random, level))(ids))
        attacked = accuracy(model, crafted(two_digit_synth, checkpoint, attack, level, ids))
        assert noisy > clean - 0.1, random  # random noise of this budget barely matters
        assert attacked < 0.25 * clean, attack  # crafted noise of the same budget breaks most CAPTCHAs


def test_the_surrogate_loss_is_the_cross_entropy_over_every_head(checkpoint):
    images, labels = torch.rand(3, 1, 100, 110), torch.tensor([[1, 2], [3, 4], [5, 6]])
    network = checkpoint[1].model
    surrogate = Surrogate([network])
    expected = F.cross_entropy(network(images).reshape(-1, 10), labels.reshape(-1))
    assert torch.allclose(F.cross_entropy(surrogate(images), labels), expected, atol=1e-5)


def test_a_surrogate_that_reads_other_captchas_names_noise_surrogate(splits, checkpoint):
    four = CaptchaSynth(splits.test, patch_size(splits.train.images, RenderConfig()), "test", 0, RenderConfig(),
                        NoiseConfig())
    with pytest.raises(ConfigError, match=r"^noise\.surrogate: .* reads CAPTCHAs of num_digits, height, width = "
                                          r"\(2, 100, 110\), these are \(4, 100, 110\)"):
        crafted(four, checkpoint, "adversarial_linf", 0.1, torch.arange(4))


@pytest.mark.parametrize("surrogate, message", [
    (None, "noise.surrogate: noise=adversarial_l0 is crafted against a solver"),
    ([], "noise.surrogate: noise=adversarial_l0 is crafted against a solver"),
])
def test_an_adversarial_type_without_a_surrogate_names_the_field(surrogate, message):
    with pytest.raises(ConfigError, match=f"^{message}"):
        NoiseConfig.from_dict({"name": "adversarial_l0", "level": 0.1, "surrogate": surrogate, "steps": 10})


def test_pgd_training_attacks_its_share_of_the_batch_within_the_budget(two_digit_synth, checkpoint):
    module = CaptchaModule(MODEL, ADAMW, num_digits=2,
                           adversarial={"noise": "adversarial_linf", "level": 0.1, "steps": 2, "share": 0.5})
    module.model.load_state_dict(checkpoint[1].model.state_dict())
    module.train()
    batch = two_digit_synth(torch.arange(8))
    attacked = module.attacked(batch)
    change = (attacked["image"] - batch["image"]).abs().flatten(1).amax(1)
    assert (change[:4] > 0.09).all() and (change[:4] <= 0.1 + 1e-6).all()
    assert (change[4:] == 0).all()
    assert module.training  # back in training mode after crafting in eval mode


def test_analysis_splits_white_box_member_and_transfer_rows():
    table = pd.DataFrame({
        "model_id": ["a", "a", "b", "a + b", "a + b", "c"],
        "surrogate": pd.Series(["a", "b", "a", "a", "c", None], dtype="string"),
        "noise_type": ["adversarial_l0"] * 5 + ["salt_and_pepper"],
        "noise_level": [0.1] * 6, "ssim": [0.9, 0.8, 0.7, 0.6, 0.5, None], "correct": [True] * 6,
    })
    others, adversarial = split_adversarial(table)
    assert list(others["model_id"]) == ["c"]
    assert list(roles(adversarial)) == ["white-box", "transfer", "transfer", "member", "transfer"]
    conditions = as_conditions(adversarial)
    assert sorted(conditions["noise_type"].unique()) == [
        "adversarial_l0 (member)", "adversarial_l0 (transfer)", "adversarial_l0 (white-box)"]
    damage = crafted_damage(conditions).set_index("noise_type")
    assert damage.loc["adversarial_l0 (transfer)", "ssim"] == pytest.approx((0.8 + 0.7 + 0.5) / 3)
    assert damage.loc["adversarial_l0 (white-box)", "captchas"] == 1


def test_a_list_of_surrogates_is_attacked_as_one_ensemble(two_digit_synth, checkpoint):
    ids = torch.arange(16)
    noise = {"steps": 3.0}
    alone = two_digit_synth.with_noise(NoiseConfig("adversarial_linf", 0.05, noise, (checkpoint[0],)))(ids)
    twice = two_digit_synth.with_noise(NoiseConfig("adversarial_linf", 0.05, noise, (checkpoint[0],) * 2))(ids)
    # Two copies of one network average to that network: the same attack, to rounding.
    assert torch.allclose(alone["image"], twice["image"], atol=1e-4)
