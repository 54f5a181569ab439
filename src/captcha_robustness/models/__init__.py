"""CAPTCHA solvers as plain nn.Modules."""
