"""Hydra multirun sweeps: per-job completion markers, the combined table, plots."""
