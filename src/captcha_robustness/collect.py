"""`python -m captcha_robustness.collect`, the older spelling of the command in commands/collect.py."""

from captcha_robustness.commands.collect import main

if __name__ == "__main__":
    main()
