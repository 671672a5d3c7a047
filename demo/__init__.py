"""Runnable demo of the pipeline: `python -m demo`."""
