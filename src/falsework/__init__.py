"""Falsework: Backstage-compatible Software Templates on a durable task engine."""

__version__ = "0.1.0"
