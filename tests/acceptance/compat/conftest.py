"""The compatibility tests' servers: real `falsework serve` processes (support.servers)."""

from __future__ import annotations

from support.servers import servers

__all__ = ["servers"]
