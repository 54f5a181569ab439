"""`python -m captcha_robustness.analyze`, the older spelling of the command in commands/analyze.py."""

from captcha_robustness.commands.entry import analyze as main

if __name__ == "__main__":
    main()
