"""The results layer: the predictions-table schema, its statistics and its plots."""
