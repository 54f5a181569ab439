"""The corruption types: registered with a config file each, clean at level 0, in [0, 1],
the same per CAPTCHA whatever its batch, more damage at higher levels, and the statistics
their docstrings promise."""

import pytest
import torch

from captcha_robustness.config_dir import configured_noise_types
from captcha_robustness.data.noise import NOISES, NoiseConfig, apply_noise, noise_parameters

CORRUPTIONS = sorted(set(NOISES) - {"none", "gaussian", "salt_and_pepper"})
IDS = torch.arange(16)


def noisy(synth, name, level, ids=IDS):
    return synth.with_noise(NoiseConfig.from_dict({"name": name, "level": level}))(ids)["image"]


def test_every_noise_type_has_its_config_file_with_its_parameters():
    assert configured_noise_types() == noise_parameters()
    assert len(CORRUPTIONS) >= 14


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_level_zero_is_clean_and_every_level_stays_in_range(synth, name):
    clean = noisy(synth, "none", 0.0)
    assert torch.equal(noisy(synth, name, 0.0), clean)
    for level in (0.3, 1.0):
        image = noisy(synth, name, level)
        assert image.shape == clean.shape and image.dtype == torch.float32
        assert torch.isfinite(image).all() and 0 <= image.min() and image.max() <= 1


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_a_captcha_is_corrupted_the_same_whatever_its_batch(synth, name):
    whole = noisy(synth, name, [0.2, 0.5, 0.9])  # a mixture: each CAPTCHA its own level
    part = noisy(synth, name, [0.2, 0.5, 0.9], IDS[5:11])
    assert torch.allclose(whole[5:11], part, atol=1e-6)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_higher_levels_do_more_damage(synth, name):
    clean = noisy(synth, "none", 0.0)
    damage = [float((noisy(synth, name, level) - clean).abs().mean()) for level in (0.25, 0.5, 0.75, 1.0)]
    assert damage == sorted(damage) and damage[0] > 0 and damage[-1] > 1.5 * damage[0], damage


def _gray(value, n=8):
    return torch.full((n, 1, 100, 110), value)


def _apply(images, name, level):
    return apply_noise(images, NoiseConfig.from_dict({"name": name, "level": level}), torch.arange(len(images)))


@pytest.mark.parametrize("level", [0.1, 0.3])
def test_uniform_noise_has_zero_mean_and_the_width_of_its_level(level):
    change = _apply(_gray(0.5), "uniform", level) - 0.5
    assert abs(float(change.mean())) < 0.002
    assert float(change.std()) == pytest.approx(level / 3**0.5, rel=0.02)
    assert float(change.abs().max()) <= level + 1e-6


def test_shot_noise_grows_with_the_square_root_of_the_gray_and_spares_black():
    assert torch.equal(_apply(_gray(0.0), "shot", 0.5), _gray(0.0))
    for gray in (0.09, 0.25):
        change = _apply(_gray(gray), "shot", 0.1) - gray
        assert float(change.std()) == pytest.approx(gray**0.5 * 0.1, rel=0.03)


def test_speckle_noise_is_proportional_to_the_gray():
    change = _apply(_gray(0.25), "speckle", 0.4) - 0.25
    assert float(change.std()) == pytest.approx(0.25 * 0.4, rel=0.03)


def test_contrast_keeps_the_mean_and_scales_the_spread(synth):
    clean = noisy(synth, "none", 0.0)
    lowered = noisy(synth, "contrast", 0.6)
    assert torch.allclose(lowered.mean((1, 2, 3)), clean.mean((1, 2, 3)), atol=1e-5)
    assert torch.allclose(lowered.std((1, 2, 3)), 0.4 * clean.std((1, 2, 3)), rtol=1e-4)


@pytest.mark.parametrize("name", ["gaussian_blur", "defocus", "motion_blur", "pixelate"])
def test_blurs_and_pixelation_keep_the_mean_brightness_and_lower_the_sharpness(synth, name):
    clean = noisy(synth, "none", 0.0)
    blurred = noisy(synth, name, 0.6)
    assert torch.allclose(blurred.mean((1, 2, 3)), clean.mean((1, 2, 3)), atol=0.01)
    sharpness = lambda x: float((x[..., 1:] - x[..., :-1]).abs().mean())  # noqa: E731
    assert sharpness(blurred) < 0.8 * sharpness(clean)


def test_pixelation_makes_blocks(synth):
    image = noisy(synth, "pixelate", 1.0)[0, 0]  # shrunk 8 times: blocks of 8 x ~8 pixels
    rows_changing = (image[1:] != image[:-1]).any(1).float().mean()
    assert rows_changing < 0.2


@pytest.mark.parametrize("name", ["lines", "zigzag", "dots", "fog"])
def test_occluders_and_fog_only_add_light(synth, name):
    clean = noisy(synth, "none", 0.0)
    assert (noisy(synth, name, 0.7) >= clean - 1e-6).all()


def test_more_strokes_at_higher_levels_keep_the_earlier_ones(synth):
    some, more = noisy(synth, "lines", 0.34), noisy(synth, "lines", 0.67)  # 2 strokes, then 4
    assert (more >= some - 1e-6).all()


def _exact_strokes_ink(points, height, width, half_width):
    """The oracle: every pixel's distance to the nearest point of every segment."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    pixels = torch.stack([xs, ys], -1).view(1, 1, 1, -1, 2)
    start, end = points[:, :, :-1, None, :], points[:, :, 1:, None, :]
    direction = end - start
    t = ((pixels - start) * direction).sum(-1) / (direction * direction).sum(-1).clamp(min=1e-6)
    distance = (pixels - (start + t.clamp(0, 1)[..., None] * direction)).norm(dim=-1).amin(2)
    return (half_width + 0.5 - distance).clamp(0, 1).view(*points.shape[:2], height, width)


@pytest.mark.parametrize("corners,teeth", [(9, 0.0), (13, 0.15)])
def test_strokes_are_drawn_as_the_exact_distance_to_the_polyline_would_draw_them(corners, teeth):
    from captcha_robustness.data.corruptions import _strokes_ink

    gen = torch.Generator().manual_seed(0)
    first, last = torch.rand(4, 3, 1, generator=gen) * 22, 88 + torch.rand(4, 3, 1, generator=gen) * 21
    xs = first + (last - first) * torch.linspace(0, 1, corners)  # evenly spaced, as lines and zigzags are
    zig = torch.where(torch.arange(corners) % 2 == 0, -1.0, 1.0) * teeth * 100
    ys = 20 + torch.rand(4, 3, 1, generator=gen) * 60 + torch.linspace(0, 1, corners) * 10 + zig
    points = torch.stack([xs, ys], -1)
    fast, exact = _strokes_ink(points, 100, 110, 1.0), _exact_strokes_ink(points, 100, 110, 1.0)
    assert torch.allclose(fast, exact, atol=1e-4)
