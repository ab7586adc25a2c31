"""``python -m rgsynth.cli`` (what torchrun starts for DDP training)."""

from rgsynth.cli import app

app()
