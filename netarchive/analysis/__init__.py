"""Analyses: pure functions from checkpoints (``netarchive.model``) to pandas DataFrames, one module per
family. No I/O and no printing here: the CLI and the API compose store -> analysis -> output."""
