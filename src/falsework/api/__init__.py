"""The HTTP API (layer 6): ``create_app(settings)`` builds the whole service."""

from falsework.api.app import create_app

__all__ = ["create_app"]
