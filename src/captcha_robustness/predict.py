"""`python -m captcha_robustness.predict`, the older spelling of the command in commands/predict.py."""

from captcha_robustness.commands.entry import predict as main

if __name__ == "__main__":
    main()
