"""The Hydra console scripts. Each names its work as "module:function", imported only after
the config has been checked (commands/cli.py), so that none of these imports torch."""

from __future__ import annotations

from captcha_robustness.commands.cli import hydra_entry

train = hydra_entry("train", "captcha_robustness.commands.train:train", last_checkpoint="checkpoints/last.ckpt")
evaluate = hydra_entry("eval", "captcha_robustness.commands.evaluate:evaluate")
predict = hydra_entry("predict", "captcha_robustness.commands.predict:predict_command")
render = hydra_entry("render", "captcha_robustness.commands.render_grid:render_grid")
analyze = hydra_entry("analyze", "captcha_robustness.commands.analyze:analyze")
study = hydra_entry("study", "captcha_robustness.commands.study:study")
recipe = hydra_entry("recipe", "captcha_robustness.commands.recipe:recipe")
