"""Allows ``python -m rates``, which is how the local stack starts its own child processes."""

from rates.cli import app

app()
