"""Helpers shared by several test areas (import as ``support.<module>``)."""
