"""captcha_robustness."""
