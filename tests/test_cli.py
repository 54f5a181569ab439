"""The README's commands, run as a user would, in a temp dir."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # runs the commands as a user does


def run(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "captcha_robustness.render_grid", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_render_grid_writes_a_png(tmp_path):
    result = run(tmp_path, "grid.count=3", "grid.levels=[0.2,0.6]", "hydra.run.dir=out")
    assert result.returncode == 0, result.stderr
    png = tmp_path / "out" / "captchas.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "out" / ".hydra" / "config.yaml").exists()
    assert "wrote" in result.stdout


def test_render_grid_shows_every_corruption_by_level(tmp_path):
    result = run(tmp_path, "grid.noises=all", "grid.by=level", "grid.levels=[0.5,1.0]", "hydra.run.dir=out")
    assert result.returncode == 0, result.stderr
    from captcha_robustness.config_dir import configured_noise_types

    # every noise type but none and those crafted against a surrogate; columns: clean, 0.5 and 1.0
    rows = len([t for t, params in configured_noise_types().items() if t != "none" and "surrogate" not in params])
    assert rows == 22 and f"({rows} rows x 3 columns" in result.stdout
    assert (tmp_path / "out" / "captchas.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "override, field",
    [
        ("noise.level=2", "noise.level"),
        ("data.render.overlap_max=-1", "data.render.overlap_min/overlap_max"),
        ("grid.split=holdout", "grid.split"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, override, field):
    extra = ["noise=gaussian"] if override.startswith("noise.") else []
    result = run(tmp_path, *extra, override, "hydra.run.dir=out")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: " + field), result.stderr
    assert not (tmp_path / "out" / "captchas.png").exists()


@pytest.mark.parametrize("overrides,refused", [([], True), (["digits=mnist5k"], False), (["digits=mnist"], False)])
def test_eval_reads_a_checkpoint_on_its_own_digit_source_unless_told_otherwise(overrides, refused):
    from types import SimpleNamespace

    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from captcha_robustness.commands.evaluate import check_digit_source
    from captcha_robustness.config_dir import CONFIG_DIR
    from captcha_robustness.errors import ConfigError

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        HydraConfig.instance().set_config(compose("eval", overrides=overrides, return_hydra_config=True))
    full_mnist = SimpleNamespace(hparams=SimpleNamespace(data_info={"digits": "mnist"}))
    if refused:
        with pytest.raises(ConfigError, match="digits: the checkpoint trained on digits=mnist, and this run would "
                                              "read digits=mnist5k; pass digits=mnist"):
            check_digit_source([full_mnist])
    else:
        check_digit_source([full_mnist])
