"""The browser page: a single-page app served beside the API (same origin)."""

from falsework.web.routes import STATIC_DIR, router

__all__ = ["STATIC_DIR", "router"]
