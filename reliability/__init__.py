"""Fault, load and hostile-input scenarios run against fresh sandboxes (`python -m reliability`)."""
