"""Training components that configs instantiate: callbacks, loggers, precision."""
