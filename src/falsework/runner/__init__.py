"""Runs one task's steps (layer 4)."""
