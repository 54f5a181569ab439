"""Noisy CAPTCHAs of one split, by id: the pure render and noise functions bound to a
digit pool, a seed and configs. Used by the DataModule, the grid command and benchmarks."""

from __future__ import annotations

import torch

from captcha_robustness.data import adversarial, rng
from captcha_robustness.data.layout import LAYOUTS, OVERLAYS, grown_patch
from captcha_robustness.data.noise import (
    NoiseConfig,
    NoiseDraw,
    apply_noise,
    level_keys,
    sample_levels,
    type_choice,
)
from captcha_robustness.data.render import (
    Augment,
    CaptchaParams,
    DigitPool,
    RenderConfig,
    render,
    sample_params,
)


class CaptchaSynth:
    """`synth(ids)` -> batch dict: `image` float32 (B, 1, H, W) in [0, 1], `label` int64
    (B, num_digits), `captcha_id` int64 (B,), `noise_level` float32 (B,).

    The clean CAPTCHA depends only on (seed, split, id) and the noise only on
    (seed, split, id, noise config), whatever the batch or device; with an active `augment`,
    its digits are also warped (`patch` must come from `patch_size` with the same augment).
    A `prerendered` synth keeps the clean CAPTCHAs of ids [0, size) and copies them instead of
    rendering again.
    """

    def __init__(self, pool: DigitPool, patch: int, split: str, seed: int, render_cfg: RenderConfig,
                 noise: NoiseConfig, clean_cache: tuple[torch.Tensor, torch.Tensor] | None = None,
                 augment: Augment = Augment()) -> None:
        self.pool, self.patch, self.render_cfg, self.noise = pool, patch, render_cfg, noise
        self.split, self.seed = split, seed
        self.clean_cache, self.augment = clean_cache, augment
        self._render_key = rng.derive_key(seed, split, "render")
        self._noise_key = rng.derive_key(seed, split, "noise")

    def with_noise(self, noise: NoiseConfig) -> CaptchaSynth:
        return CaptchaSynth(self.pool, self.patch, self.split, self.seed, self.render_cfg, noise, self.clean_cache,
                            self.augment)

    def to(self, device: torch.device | str) -> CaptchaSynth:
        return CaptchaSynth(self.pool.to(device), self.patch, self.split, self.seed, self.render_cfg, self.noise,
                            augment=self.augment)

    def prerendered(self, size: int) -> CaptchaSynth:
        """This synth with the clean CAPTCHAs of ids [0, size) rendered once and kept."""
        images, labels = self.clean(torch.arange(size, device=self.pool.images.device))
        return CaptchaSynth(self.pool, self.patch, self.split, self.seed, self.render_cfg, self.noise, (images, labels),
                            self.augment)

    def params(self, ids: torch.Tensor) -> CaptchaParams:
        """How `ids` are drawn: which pool digits (`digit_index`), their scale, rotation, spacing."""
        ids = ids.to(self.pool.images.device, torch.int64)
        return sample_params(rng.item_keys(self._render_key, ids), len(self.pool), self.render_cfg, self.augment)

    def clean(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Clean CAPTCHAs and labels of `ids`."""
        ids = ids.to(self.pool.images.device, torch.int64)
        if self.clean_cache is not None and len(ids) and 0 <= ids.min() and ids.max() < len(self.clean_cache[0]):
            images, labels = self.clean_cache
            return images[ids], labels[ids]
        params = self.params(ids)
        return render(self.pool, params, self.render_cfg, self.patch), self.pool.labels[params.digit_index]

    def __call__(self, ids: torch.Tensor) -> dict[str, torch.Tensor]:
        ids = torch.as_tensor(ids, dtype=torch.int64, device=self.pool.images.device)
        if self.noise.adversarial:
            return self._adversarial(ids)
        noise_keys = rng.item_keys(self._noise_key, ids)
        levels = sample_levels(self.noise, level_keys(noise_keys))
        names = self.noise.name if isinstance(self.noise.name, tuple) else (self.noise.name,)
        if any(name in LAYOUTS or name in OVERLAYS for name in names):
            images, labels = self._drawn_with_noise(ids, names, noise_keys, levels)
        else:
            images, labels = self.clean(ids)
        apply_noise(images, self.noise, noise_keys, levels, inplace=True)
        return {"image": images, "label": labels, "captcha_id": ids, "noise_level": levels}

    def _drawn_with_noise(self, ids: torch.Tensor, names: tuple[str, ...], noise_keys: torch.Tensor,
                          levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The CAPTCHAs of `ids` rendered with the layout types among `names` applied to those
        drawn to get them (the others at level 0, unchanged), and stray strokes laid over."""
        choice = type_choice(self.noise, noise_keys)
        draw = NoiseDraw(noise_keys, 0)
        params = self.params(ids)
        for k, name in enumerate(names):
            if name in LAYOUTS:
                params = LAYOUTS[name](params, torch.where(choice == k, levels, 0.0), draw)
        grown = float(params.scale.max()) / self.render_cfg.scale_max if len(ids) else 1.0
        images = render(self.pool, params, self.render_cfg, grown_patch(self.patch, grown))
        for k, name in enumerate(names):
            rows = ((choice == k) & (levels > 0)).nonzero().view(-1)
            if name in OVERLAYS and len(rows):
                other_keys = rng.item_keys(rng.derive_key(self.seed, self.split, "strays"), noise_keys[rows])
                other = render(self.pool, sample_params(other_keys, len(self.pool), self.render_cfg), self.render_cfg,
                               self.patch)
                images[rows] = OVERLAYS[name](images[rows], other, levels[rows], NoiseDraw(noise_keys[rows], 0))
        return images, self.pool.labels[params.digit_index]

    def _adversarial(self, ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """The adversarial CAPTCHAs of `ids`, from the fixed blocks of ids they fall in, and
        each one's SSIM against its clean CAPTCHA (`ssim`)."""
        blocks = torch.unique(ids // adversarial.BLOCK)
        images, labels, ssim = (torch.cat(parts) for parts in zip(*[self._crafted_block(int(b)) for b in blocks]))
        rows = torch.searchsorted(blocks, ids // adversarial.BLOCK) * adversarial.BLOCK + ids % adversarial.BLOCK
        level = torch.full(ids.shape, self.noise.fixed_level, device=ids.device)
        return {"image": images[rows], "label": labels[rows], "captcha_id": ids, "noise_level": level,
                "ssim": ssim[rows]}

    def _crafted_block(self, block: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Block `block` of ids crafted against the surrogate; val and test blocks are kept
        (for the last noise condition only) so that every solver reading them pays once."""
        device = self.pool.images.device
        condition = (id(self.pool), self.patch, self.seed, self.split, repr(self.noise), str(device), self.render_cfg)
        if _CRAFTED.get("condition") != condition:
            _CRAFTED.clear()
            _CRAFTED.update(condition=condition, pool=self.pool)  # the pool kept alive, so its id stays its own
        if block in _CRAFTED:
            return _CRAFTED[block]
        ids = torch.arange(block * adversarial.BLOCK, (block + 1) * adversarial.BLOCK, device=device)
        clean, labels = self.clean(ids)
        cfg = self.render_cfg
        surrogate = adversarial.load_surrogate(self.noise.surrogate, str(device), (cfg.num_digits, cfg.height, cfg.width))
        crafted = adversarial.craft(self.noise.name, surrogate, clean, labels, self.noise.fixed_level,
                                    rng.item_keys(self._noise_key, ids),
                                    int(self.noise.params.get("steps", 10)),
                                    rng.derive_key(self.seed, self.split, "attack", block))
        out = crafted, labels, adversarial.ssim_per_image(crafted, clean)
        if self.split != "train":
            _CRAFTED[block] = out
        return out


# The adversarial blocks of one noise condition, kept across the jobs of an evaluation sweep that
# read the same condition one solver after another.
_CRAFTED: dict = {}
