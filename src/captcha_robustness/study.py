"""`python -m captcha_robustness.study`, the older spelling of the command in commands/study.py."""

from captcha_robustness.commands.entry import study as main

if __name__ == "__main__":
    main()
