import pytest
import torch

from captcha_robustness.data import rng


def test_tensor_hash_matches_python_reference():
    values = [0, 1, 2**40 + 7, -5, -(2**62)]
    out = rng.mix64_(torch.tensor(values, dtype=torch.int64))
    expected = [rng._signed(rng.mix64_int(v)) for v in values]
    assert out.tolist() == expected


def test_uniforms_are_uniform_and_keyed():
    keys = rng.item_keys(rng.derive_key(3, "test"), torch.arange(200))
    u = rng.words_to_unit(rng.random_words(keys, 50))
    assert 0 <= u.min() and u.max() < 1
    assert abs(u.mean().item() - 0.5) < 0.01
    assert abs(u.var().item() - 1 / 12) < 0.003
    assert rng.derive_key(3, "test") != rng.derive_key(4, "test") != rng.derive_key(3, "train")
    lanes = rng.random_words(keys, 250).view(torch.int16).float()  # the noise's 16-bit lanes
    assert abs(lanes.mean().item() + 0.5) < 200  # centred on -0.5 in [-32768, 32767]
    assert lanes.std().item() == pytest.approx(65536 / 12**0.5, rel=0.01)
