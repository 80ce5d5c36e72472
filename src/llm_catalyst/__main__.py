"""``python -m llm_catalyst`` runs the CLI (also what ``accelerate launch -m`` needs)."""

from llm_catalyst.commands import app

app()
