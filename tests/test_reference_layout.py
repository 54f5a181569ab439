"""The reference layout against its oracle, the per-CAPTCHA Pillow implementation of the
reference study's description (benchmarks/reference_pil.py)."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats

from benchmarks import reference_pil
from captcha_robustness.data import pil_geometry, rng
from captcha_robustness.data.noise import NoiseConfig
from captcha_robustness.data.render import (
    LAYOUT_NAMES, REFERENCE, Augment, RenderConfig, digit_sides, patch_size, render, sample_params,
)
from captcha_robustness.data.synth import CaptchaSynth


def _digits(splits, count, seed=0):
    gen = np.random.default_rng(seed)
    return splits.test.images[torch.as_tensor(gen.integers(0, len(splits.test), count))]


def test_resize_and_rotation_equal_pillow_s_pixel_for_pixel(splits):
    gen = np.random.default_rng(1)
    digits = _digits(splits, 64)
    sides = torch.as_tensor(gen.integers(20, 40, len(digits)))
    angles = torch.as_tensor(gen.uniform(-30, 30, len(digits)))
    resized = pil_geometry.resize_squares(digits, sides)
    patch = pil_geometry.patch_for(sides, -30, 30)
    layers, off_x, off_y = pil_geometry.rotate_into(resized, sides, angles, patch)
    for i, digit in enumerate(digits.numpy()):
        side = int(sides[i])
        small = Image.fromarray(digit, mode="L").resize((side, side), Image.BILINEAR)
        assert np.array_equal(resized[i, :side, :side].numpy(), np.asarray(small))
        assert resized[i, side:].abs().sum() == 0 and resized[i, :, side:].abs().sum() == 0
        layer = np.asarray(small.rotate(float(angles[i]), resample=Image.BILINEAR, expand=True))
        x, y = int(off_x[i]), int(off_y[i])
        ours = layers[i].numpy()
        assert np.array_equal(ours[y:y + layer.shape[0], x:x + layer.shape[1]], layer)
        assert ours.sum() == layer.sum()  # nothing outside the layer


def _same_draws(splits, count, cfg=RenderConfig()):
    pool = splits.test
    keys = rng.item_keys(rng.derive_key(0, "test", "render"), torch.arange(count))
    params = sample_params(keys, len(pool), cfg)
    ours = render(pool, params, cfg, patch_size(pool.images, cfg))[:, 0].numpy()
    oracle = np.stack([
        reference_pil.render_reference([pool.images[j].numpy() for j in params.digit_index[i].tolist()],
                                       params.scale[i].tolist(), params.angle_deg[i].tolist(),
                                       (-params.overlap[i]).tolist(), cfg)
        for i in range(count)])
    return ours, oracle


def test_the_batched_reference_layout_equals_the_oracle_within_rounding(splits):
    ours, oracle = _same_draws(splits, 200)
    difference = np.abs(ours - oracle) * 255
    # Only the last stretch rounds differently (float32 weights against Pillow's fixed point).
    assert difference.max() <= 2.0 + 1e-3
    assert difference.mean() < 0.05


def test_the_oracle_equality_holds_with_other_geometry(splits):
    cfg = RenderConfig(height=64, width=160, scale_min=0.7, scale_max=1.6, rotation_min=-35, rotation_max=35,
                       gap_min=0, gap_max=9, padding=5)
    ours, oracle = _same_draws(splits, 60, cfg)
    assert ours.shape == (60, 64, 160)
    assert np.abs(ours - oracle).max() * 255 <= 2.0 + 1e-3


def _segments(images):
    """Per CAPTCHA whose ink splits into exactly four column runs (the digits, where none is
    broken): the three blank runs between them (pixels) and the spread of the four runs' ink
    centre rows (max - min, pixels)."""
    gaps, spreads = [], []
    for image in images:
        ink = image > 0.25
        cols = ink.any(0)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], cols.astype(int), [0]])))
        starts, stops = edges[::2], edges[1::2]
        if len(starts) != 4:
            continue
        gaps.extend((starts[1:] - stops[:-1]).tolist())
        centres = [np.flatnonzero(ink[:, a:b].any(1))[[0, -1]].mean() for a, b in zip(starts, stops)]
        spreads.append(max(centres) - min(centres))
    return np.array(gaps), np.array(spreads)


def test_gaps_and_vertical_offsets_are_distributed_as_the_oracle_draws_them(splits, synth):
    n = 1500
    ours = synth(torch.arange(n))["image"][:, 0].numpy()
    gen = np.random.default_rng(0)
    pool, labels = splits.test.images.numpy(), splits.test.labels.numpy()
    oracle = np.stack([reference_pil.render_noisy(pool, labels, gen, None, 0.0, channels=1)[0] for _ in range(n)])
    (our_gaps, our_spread), (oracle_gaps, oracle_spread) = _segments(ours), _segments(oracle)
    assert len(our_spread) > n / 3 and len(oracle_spread) > n / 3  # most CAPTCHAs segment into four digits
    assert stats.ks_2samp(our_gaps, oracle_gaps).pvalue > 0.01
    assert stats.ks_2samp(our_spread, oracle_spread).pvalue > 0.01
    # ... and the test can tell: the touching layout's digits touch; the centred inks share a line.
    touching = [reference_pil.render_noisy(pool, labels, gen, None, 0.0, channels=1, layout="touching")[0]
                for _ in range(n // 3)]
    touching_gaps, touching_spread = _segments(np.stack(touching))
    assert len(touching_spread) < len(oracle_spread) / 5
    assert np.median(oracle_spread) > 4 and np.median(touching_spread) < np.median(oracle_spread) / 2


def test_reference_gaps_are_drawn_within_their_range_and_the_rest_as_the_touching_layout(splits):
    keys = rng.item_keys(rng.derive_key(0, "test", "render"), torch.arange(3000))
    reference = sample_params(keys, len(splits.test), RenderConfig())
    touching = sample_params(keys, len(splits.test), RenderConfig(layout="touching"))
    assert sorted(torch.unique(-reference.overlap).tolist()) == [2, 3, 4, 5, 6]
    for name in ("digit_index", "scale", "angle_deg"):
        assert torch.equal(getattr(reference, name), getattr(touching, name))
    assert (reference.layouts(RenderConfig()) == REFERENCE).all()
    assert torch.equal(digit_sides(torch.tensor([0.9, 1.0, 1.3])), torch.tensor([25, 28, 36]))


def test_training_draws_each_layout_for_about_half_its_captchas(splits):
    cfg, augment = RenderConfig(), Augment(layouts=("reference", "touching"))
    keys = rng.item_keys(rng.derive_key(0, "train", "render"), torch.arange(4000))
    mixed = sample_params(keys, len(splits.train), cfg, augment)
    share = (mixed.layout == REFERENCE).float().mean()
    assert 0.46 < share < 0.54
    alone = sample_params(keys, len(splits.train), cfg)
    assert torch.equal(mixed.digit_index, alone.digit_index) and torch.equal(mixed.scale, alone.scale)
    touching = mixed.layout == LAYOUT_NAMES.index("touching")
    assert (mixed.overlap[touching] >= 2).all() and (mixed.overlap[~touching] <= -2).all()
    # A mixed batch renders each CAPTCHA as its layout alone would.
    pool = splits.train
    patch = patch_size(pool.images, replace(cfg, layout="touching"), augment)
    images = render(pool, mixed[:64], cfg, patch)
    for layout in LAYOUT_NAMES:
        rows = (mixed.layout[:64] == LAYOUT_NAMES.index(layout)).nonzero().view(-1)
        alone = render(pool, mixed[rows], replace(cfg, layout=layout), patch)
        assert torch.equal(images[rows], alone)


def test_a_reference_captcha_does_not_depend_on_its_batch(splits, patch):
    synth = CaptchaSynth(splits.test, patch, "test", 0, RenderConfig(), NoiseConfig())
    whole = synth(torch.arange(40))["image"]
    assert torch.equal(whole[[7, 31]], synth(torch.tensor([7, 31]))["image"])


@pytest.mark.parametrize("augment", [Augment(stroke=0.3, erase=6), Augment(elastic_alpha=1.5, slant=0.2, aspect=0.1)])
def test_source_augments_keep_the_reference_layout_and_change_the_digits(splits, augment):
    cfg, pool = RenderConfig(), splits.train
    keys = rng.item_keys(rng.derive_key(0, "train", "render"), torch.arange(32))
    plain = render(pool, sample_params(keys, len(pool), cfg), cfg, 2)
    warped = render(pool, sample_params(keys, len(pool), cfg, augment), cfg, 2)
    assert warped.shape == plain.shape and 0 <= warped.min() and warped.max() <= 1
    assert (warped - plain).abs().mean() > 0.005
    assert abs(float(warped.mean() / plain.mean()) - 1) < 0.35
