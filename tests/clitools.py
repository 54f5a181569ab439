"""Running the commands as a user does, in a temp dir (shared by the end-to-end tests)."""

import subprocess
import sys

# A constant learning rate, so that the resume test may extend the run (a one-cycle schedule is
# fixed by the length of the run it started with).
TINY = ["scheduler=null", "data.train_size=256", "data.val_size=64", "data.test_size=96", "data.batch_size=32",
        "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu"]


def run(cwd, module, *args, env=None):
    return subprocess.run([sys.executable, "-m", f"captcha_robustness.{module}", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def assert_one_line_error(result, field):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}"), result.stderr
