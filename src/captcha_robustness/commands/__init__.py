"""The commands (console scripts), each a thin Hydra shell over the modules beside it."""
