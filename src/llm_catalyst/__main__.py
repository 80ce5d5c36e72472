"""``python -m llm_catalyst`` runs the CLI (also what ``accelerate launch -m`` needs)."""

from llm_catalyst.cli import app

app()
