"""Fixtures of the red-team suite: real `falsework serve` processes, attacked as a
plain signed-in user (alice or bob, no admin) would attack them.

The servers are those of the API tests (support.servers): tokens alice and bob
(plain users in different groups) and admin.
"""

from __future__ import annotations

from support.servers import module_database, pg_database, server, servers

__all__ = ["module_database", "pg_database", "server", "servers"]
