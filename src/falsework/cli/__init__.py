"""Typer commands (layer 7)."""
