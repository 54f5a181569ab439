"""`python -m captcha_robustness.train`, the older spelling of the command in commands/train.py."""

from captcha_robustness.commands.entry import train as main

if __name__ == "__main__":
    main()
