"""Alembic migrations of the engine's tables (run by ``falsework db upgrade``)."""
