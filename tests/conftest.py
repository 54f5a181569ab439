from __future__ import annotations

import pytest
import torch

from captcha_robustness.data.digits import Mnist5kDigits
from captcha_robustness.data.render import RenderConfig, patch_size
from captcha_robustness.data.synth import CaptchaSynth
from captcha_robustness.data.noise import NoiseConfig
from clitools import TINY, run


@pytest.fixture(scope="session")
def splits():
    return Mnist5kDigits().load()


@pytest.fixture(scope="session")
def patch(splits):
    return patch_size(splits.train.images, RenderConfig())


@pytest.fixture(scope="session")
def synth(splits, patch):
    return CaptchaSynth(splits.test, patch, "test", 0, RenderConfig(), NoiseConfig())


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("train")
    result = run(cwd, "train", *TINY, "hydra.run.dir=run1")
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd, result
