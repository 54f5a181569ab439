"""Corruptions of the drawing (layout types, stray strokes) and the MNIST-C occluders: each
moves the digits as far as its docstring says, no further, and leaves the labels alone."""

import torch

from captcha_robustness.data import rng
from captcha_robustness.data.layout import baseline, digit_size, grown_patch, spacing
from captcha_robustness.data.noise import NoiseConfig, NoiseDraw, apply_noise
from captcha_robustness.data.render import RenderConfig, patch_size

IDS = torch.arange(32)


def noisy(synth, name, level, ids=IDS):
    return synth.with_noise(NoiseConfig.from_dict({"name": name, "level": level}))(ids)


def params_and_draw(synth, ids=IDS):
    keys = rng.item_keys(rng.derive_key(0, "test", "noise"), ids)
    return synth.params(ids), NoiseDraw(keys, 0)


def test_baseline_moves_each_digit_by_at_most_its_level_and_further_at_higher_levels(synth):
    params, draw = params_and_draw(synth)
    shifts = [baseline(params, torch.full((len(IDS),), level), draw).baseline for level in (0.25, 0.5, 1.0)]
    for level, shift in zip((0.25, 0.5, 1.0), shifts):
        assert shift.dtype == torch.int64 and shift.abs().max() <= round(14 * level)
    assert (shifts[2].abs() >= shifts[1].abs()).all() and (shifts[1].abs() >= shifts[0].abs()).all()
    assert shifts[2].abs().float().mean() > 5  # uniform in [-14, 14]: 7 on average
    assert (shifts[2].sign() * shifts[1].sign() >= 0).all()  # the same direction at every level


def test_spacing_changes_every_gap_by_its_level_both_ways(synth):
    params, draw = params_and_draw(synth)
    changed = spacing(params, torch.full((len(IDS),), 0.5), draw).overlap - params.overlap
    assert set(changed.abs().unique().tolist()) == {6}
    assert 0.3 < (changed > 0).float().mean() < 0.7


def test_digit_size_stays_within_half_and_twice(synth):
    params, draw = params_and_draw(synth)
    ratio = digit_size(params, torch.full((len(IDS),), 1.0), draw).scale / params.scale
    assert 0.5 <= ratio.min() and ratio.max() <= 2.0 and ratio.min() < 0.6 and ratio.max() > 1.7


def test_a_grown_patch_holds_digits_scaled_past_the_recipe(splits):
    cfg = RenderConfig()
    patch = patch_size(splits.test.images, cfg)
    for ratio in (1.0, 1.5, 2.0):
        wider = RenderConfig(scale_min=cfg.scale_min, scale_max=cfg.scale_max * ratio)
        assert grown_patch(patch, ratio) >= patch_size(splits.test.images, wider)


def test_layout_types_keep_the_labels_and_draw_the_digits_elsewhere(synth):
    clean = noisy(synth, "none", 0.0)
    for name in ("baseline", "spacing", "digit_size"):
        moved = noisy(synth, name, 1.0)
        assert torch.equal(moved["label"], clean["label"])
        changed = (moved["image"] - clean["image"]).abs().flatten(1).amax(1)
        assert (changed > 0.5).float().mean() > 0.9, name


def test_baseline_moves_the_digits_off_a_common_centre_line(synth):
    def centre_spread(images):  # std over the four quarters of the width of the ink's mean row
        quarters = images[..., :108].squeeze(1).unflatten(-1, (4, 27)).sum(-1)  # (B, rows, 4)
        rows = torch.arange(images.shape[-2], dtype=torch.float32).view(1, -1, 1)
        return ((quarters * rows).sum(1) / quarters.sum(1).clamp(min=1e-6)).std(1)

    clean, moved = noisy(synth, "none", 0.0)["image"], noisy(synth, "baseline", 1.0)["image"]
    assert centre_spread(moved).mean() > 2 * centre_spread(clean).mean()


def test_stray_strokes_only_add_ink_and_more_at_higher_levels(synth):
    clean = noisy(synth, "none", 0.0)["image"]
    ink = []
    for level in (0.3, 0.6, 1.0):
        image = noisy(synth, "stray_strokes", level)["image"]
        assert (image >= clean).all()
        ink.append(float((image - clean).sum()))
    assert 0 < ink[0] < ink[1] < ink[2]


def test_a_mixture_with_layout_types_leaves_the_other_types_captchas_as_they_would_be(synth):
    mixed = noisy(synth, ["baseline", "gaussian"], 0.4)
    alone = noisy(synth, "gaussian", 0.4)
    same = (mixed["image"] == alone["image"]).flatten(1).all(1)
    assert 0.2 < same.float().mean() < 0.8  # about half drew gaussian, and read exactly as gaussian alone


def test_stripe_at_one_half_inverts_half_the_columns():
    gray = torch.full((4, 1, 100, 110), 0.2)
    out = apply_noise(gray, NoiseConfig.from_dict({"name": "stripe", "level": 0.5}), torch.arange(4))
    inverted = (out - 0.8).abs().lt(1e-6).all(2).squeeze(1)  # (B, columns)
    untouched = (out - 0.2).abs().lt(1e-6).all(2).squeeze(1)
    assert (inverted.sum(1) == 55).all() and (inverted | untouched).all()


def test_dotted_lines_are_dashed():
    black = torch.zeros(8, 1, 100, 110)
    out = apply_noise(black, NoiseConfig.from_dict({"name": "dotted_line", "level": 0.25}), torch.arange(8))
    columns = out.amax(2).squeeze(1) > 0.5  # (B, columns) that a dash crosses
    assert (columns.float().mean(1) - 0.5).abs().max() < 0.1  # 3 pixels on, 3 off
    runs = (columns[:, 1:] != columns[:, :-1]).sum(1)
    assert (runs >= 30).all()
