"""Digit sources, the CAPTCHA renderer, noise, and the Lightning DataModule."""
