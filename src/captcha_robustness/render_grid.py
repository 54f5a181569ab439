"""`python -m captcha_robustness.render_grid`, the older spelling of the command in commands/render_grid.py."""

from captcha_robustness.commands.entry import render as main

if __name__ == "__main__":
    main()
