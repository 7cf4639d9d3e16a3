"""Short timings, a broker and a store on each dialect (tests/support/engine.py)."""

from __future__ import annotations

from support.engine import broker, make_settings, pg_pair, settings, store

__all__ = ["broker", "make_settings", "pg_pair", "settings", "store"]  # fixtures
