"""Statistics on predictions tables: accuracy summaries, robustness thresholds, logistic
regression of success; pure functions of DataFrames, wired together by captcha-analyze."""
