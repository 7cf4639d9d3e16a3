"""Falsework: Backstage-compatible Software Templates on a durable task engine."""

from falsework import yamlstart

__version__ = "0.1.0"

yamlstart.seed()  # before any of Falsework imports PyYAML (see yamlstart)
