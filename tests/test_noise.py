import math

import pytest
import torch

from captcha_robustness.data import rng
from captcha_robustness.data.noise import NoiseConfig, NoiseDraw, _windows, apply_noise
from captcha_robustness.errors import ConfigError

N_IMAGES, PIXELS = 64, 100 * 110


def noisy(name, level, base=0.5, **params):
    images = torch.full((N_IMAGES, 1, 100, 110), base)
    keys = rng.item_keys(rng.derive_key(0, "test", "noise"), torch.arange(N_IMAGES))
    return images, apply_noise(images, NoiseConfig.from_dict({"name": name, "level": level, **params}), keys)


def within_binomial(p_hat, p, n, sigmas=5):
    return abs(p_hat - p) <= sigmas * math.sqrt(max(p * (1 - p), 1e-12) / n) + 1e-9


@pytest.mark.parametrize("level", [0.05, 0.3, 0.8])
def test_salt_and_pepper_statistics(level):
    images, out = noisy("salt_and_pepper", level)
    changed = out != images
    n = changed.numel()
    assert within_binomial(changed.float().mean().item(), level, n)
    assert set(out[changed].unique().tolist()) <= {0.0, 1.0}
    salt = (out[changed] == 1).float().mean().item()
    assert within_binomial(salt, 0.5, int(changed.sum()))


@pytest.mark.parametrize("level", [0.05, 0.3, 0.8])
def test_gaussian_statistics(level):
    sigma = 0.1  # small enough that clipping at 0/1 from 0.5 is rare (5 sigma)
    images, out = noisy("gaussian", level, sigma=sigma)
    changed = out != images
    assert within_binomial(changed.float().mean().item(), level, changed.numel())
    added = (out - images)[changed]
    assert abs(added.mean().item()) < 5 * sigma / math.sqrt(added.numel())
    assert added.std().item() == pytest.approx(sigma, rel=0.02)
    kurtosis = ((added / added.std()) ** 4).mean().item()
    assert kurtosis == pytest.approx(3.0, abs=0.1)


def test_gaussian_sigma_one_clips_like_the_reference():
    _, out = noisy("gaussian", 1.0, base=0.0)
    # 0 + N(0, 1) clipped: half stay 0, P(z > 1) = 15.9% become 1
    assert (out == 0).float().mean().item() == pytest.approx(0.5, abs=0.01)
    assert (out == 1).float().mean().item() == pytest.approx(0.1587, abs=0.01)


@pytest.mark.parametrize("name", ["gaussian", "salt_and_pepper", "none"])
def test_level_zero_is_identity(name):
    images, out = noisy(name, 0.0)
    assert torch.equal(images, out)


def test_common_random_numbers():
    _, low = noisy("salt_and_pepper", 0.2)
    images, high = noisy("salt_and_pepper", 0.5)
    hit_low, hit_high = low != images, high != images
    assert not (hit_low & ~hit_high).any(), "pixels hit at 0.2 are hit at 0.5 too"
    assert torch.equal(low[hit_low], high[hit_low]), "and take the same value"
    _, gauss = noisy("gaussian", 0.2)
    assert torch.equal(gauss != images, hit_low), "both types at one level hit the same pixels"


def test_every_captcha_gets_its_own_draw_and_it_repeats():
    _, a = noisy("salt_and_pepper", 0.3)
    _, b = noisy("salt_and_pepper", 0.3)
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])


def test_table_windows_are_the_slices_they_claim():
    table = torch.arange(1000, dtype=torch.int16)
    starts = torch.tensor([0, 17, 900])
    rows = _windows(table, starts, 100)
    assert [row.tolist() for row in rows] == [list(range(s, s + 100)) for s in (0, 17, 900)]


def test_draws_of_different_captchas_are_uncorrelated():
    """The tables are shared, so check that CAPTCHAs do not share numbers: the hit masks of
    every pair agree as often as independent draws would (and so do their shifted copies),
    and the normals of two CAPTCHAs are uncorrelated."""
    draw = NoiseDraw(rng.item_keys(rng.derive_key(0, "test", "noise"), torch.arange(N_IMAGES)), PIXELS)
    hit = draw.hit(torch.full((N_IMAGES,), 0.5)).bool()
    same = (hit.unsqueeze(0) == hit.unsqueeze(1)).float().mean(2)  # (N, N) agreement
    off_diagonal = same[~torch.eye(N_IMAGES, dtype=torch.bool)]
    assert (off_diagonal - 0.5).abs().max() < 5 * 0.5 / math.sqrt(PIXELS)
    shifted = (hit[:, 1:] == hit[:, :-1]).float().mean(1)  # a CAPTCHA against itself shifted by one pixel
    assert (shifted - 0.5).abs().max() < 5 * 0.5 / math.sqrt(PIXELS)
    z = draw.normal(1)
    corr = torch.corrcoef(z)[~torch.eye(N_IMAGES, dtype=torch.bool)]
    assert corr.abs().max() < 5 / math.sqrt(PIXELS)
    assert z.mean().abs() < 5 / math.sqrt(z.numel()) and z.std().item() == pytest.approx(1.0, abs=0.01)


def test_level_mixtures():
    keys = rng.item_keys(5, torch.arange(3000))
    images = torch.full((3000, 1, 4, 4), 0.5)
    from captcha_robustness.data.noise import level_keys, sample_levels

    cfg = NoiseConfig.from_dict({"name": "salt_and_pepper", "level": [0.2, 0.3, 0.4]})
    levels = sample_levels(cfg, level_keys(keys))
    counts = torch.stack([(levels == torch.tensor(v)).sum() for v in (0.2, 0.3, 0.4)])
    assert counts.sum() == 3000 and counts.min() > 900
    ranged = sample_levels(NoiseConfig.from_dict({"name": "gaussian", "level": {"low": 0.1, "high": 0.2}}), level_keys(keys))
    assert ranged.min() >= 0.1 and ranged.max() <= 0.2 and ranged.std() > 0.02
    assert apply_noise(images, cfg, keys).shape == images.shape


def test_a_mixture_of_noise_types_gives_each_captcha_one_type():
    cfg = {"name": ["gaussian", "salt_and_pepper"], "level": 0.3}
    assert NoiseConfig.from_dict(cfg).label == "gaussian+salt_and_pepper"
    images, out = noisy(cfg["name"], 0.3)
    hit = out != images
    assert within_binomial(hit.float().mean().item(), 0.3, N_IMAGES * PIXELS)
    binary = ((out == 0) | (out == 1) | ~hit).flatten(1).all(1)  # salt & pepper leaves only 0 and 1
    gaussian = [noisy("gaussian", 0.3)[1][i] for i in range(N_IMAGES) if not binary[i]]
    salt = [noisy("salt_and_pepper", 0.3)[1][i] for i in range(N_IMAGES) if binary[i]]
    assert 16 <= binary.sum() <= 48
    assert all(torch.equal(a, b) for a, b in zip(gaussian, out[~binary]))  # the same draw as the pure type
    assert all(torch.equal(a, b) for a, b in zip(salt, out[binary]))


@pytest.mark.parametrize(
    "cfg, field",
    [
        ({"name": "gaussian", "level": 1.5}, "noise.level"),
        ({"name": "gaussian", "level": -0.1}, "noise.level"),
        ({"name": "gaussian", "level": "high"}, "noise.level"),
        ({"name": "gaussian", "level": []}, "noise.level"),
        ({"name": "gaussian", "level": {"low": 0.5, "high": 0.1}}, "noise.level"),
        ({"name": "sparkle", "level": 0.1}, "noise.name"),
        ({"name": ["gaussian", "none"], "level": 0.1}, "noise.name"),
        ({"name": "gaussian", "level": 0.1, "sigma": [1, 2]}, "noise.sigma"),
        ({"name": "salt_and_pepper", "level": 0.1, "sigma": 1}, "noise.sigma"),
        ({"name": "none", "level": 0.3}, "noise.level"),
    ],
)
def test_bad_noise_config_names_the_field(cfg, field):
    with pytest.raises(ConfigError, match=field):
        NoiseConfig.from_dict(cfg)


def test_mixture_where_a_number_is_needed():
    with pytest.raises(ConfigError, match="noise.level: must be a single number"):
        NoiseConfig.from_dict({"name": "gaussian", "level": [0.1, 0.2]}).fixed_level
