"""Runnable demo of the pipeline: `python -m demo` (or `python -m replay demo`)."""
