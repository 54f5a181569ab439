"""`python -m captcha_robustness.evaluate`, the older spelling of the command in commands/evaluate.py."""

from captcha_robustness.commands.entry import evaluate as main

if __name__ == "__main__":
    main()
