"""captcha-predict's image reading: every mode PIL opens comes to [0, 1] by its own range."""

import numpy as np
import pytest
import torch
from PIL import Image

from captcha_robustness.commands.predict import load_image
from captcha_robustness.errors import ConfigError

# A 100 x 110 gradient of gray levels 0..255, the reference every other mode must read alike.
LEVELS = np.tile(np.linspace(0, 255, 110).round().astype(np.uint8), (100, 1))


def read(tmp_path, image: Image.Image, name: str = "x.png", invert: bool = False) -> torch.Tensor:
    image.save(tmp_path / name)
    return load_image(tmp_path / name, 100, 110, invert)


def test_sixteen_bit_gray_reads_like_eight_bit(tmp_path):
    eight = read(tmp_path, Image.fromarray(LEVELS), "8.png")
    sixteen = Image.fromarray((LEVELS.astype(np.uint16) * 257))
    read16 = read(tmp_path, sixteen, "16.png")
    with Image.open(tmp_path / "16.png") as reopened:
        assert reopened.mode in ("I;16", "I")  # PIL keeps the 16 bits
    assert torch.allclose(read16, eight, atol=1 / 255)
    assert read16.max() > 0.99  # not a nearly white or nearly black image


def test_float_and_wide_integer_images_keep_their_levels(tmp_path):
    eight = read(tmp_path, Image.fromarray(LEVELS), "8.png")
    floats = Image.fromarray(LEVELS.astype(np.float32) / 255)
    assert torch.allclose(read(tmp_path, floats, "f.tiff"), eight, atol=1e-4)
    as_int = Image.fromarray(LEVELS).convert("I")  # 32-bit integers holding 8-bit levels
    assert torch.allclose(read(tmp_path, as_int, "i.tiff"), eight, atol=1e-4)
    inverted = read(tmp_path, Image.fromarray(LEVELS.astype(np.uint16) * 257), "inv.png", invert=True)
    assert torch.allclose(inverted, 1 - eight, atol=1 / 255)


def test_levels_outside_the_mode_s_range_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^images: .*bad.tiff: F pixels outside 0-1 cannot be read as gray levels$"):
        read(tmp_path, Image.fromarray(np.full((100, 110), 3.0, np.float32)), "bad.tiff")
