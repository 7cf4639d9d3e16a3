"""Who is calling: bearer tokens, local mode, and what an identity may do.

Tokens are configured as the hex SHA-256 of the secret (``auth.tokens`` in the
config file), so the file never holds a usable credential. In local mode (bound to
loopback, no tokens configured) every caller is ``user:default/guest``, an admin.

Templates restrict who may run them with the annotation
``falsework.dev/allowed-groups``: a comma-separated list of group (or user) refs.
A caller whose ref or one of whose groups is listed may run the template; admins
always may; a template without the annotation is open to every caller.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from falsework.config import Settings, TokenConfig
from falsework.errors import AuthenticationError, NotAllowedError

GUEST = "user:default/guest"
ALLOWED_GROUPS = "falsework.dev/allowed-groups"


@dataclass(frozen=True)
class Identity:
    ref: str
    groups: tuple[str, ...] = field(default=())
    admin: bool = False

    def user_context(self) -> dict[str, Any]:
        """What a template sees as ``user`` (Backstage: ``spec.user``)."""
        return {"ref": self.ref}

    def owns(self, created_by: str | None) -> bool:
        return self.admin or created_by == self.ref


class Authenticator:
    """Turns an ``Authorization`` header into an :class:`Identity`."""

    def __init__(self, settings: Settings) -> None:
        self.local_mode = settings.local_mode
        self._tokens: dict[str, TokenConfig] = {
            t.sha256.strip().lower(): t for t in settings.auth.tokens
        }

    def malformed(self) -> list[str]:
        """Users whose configured sha256 is not 64 hex digits (so never matches)."""
        return [
            t.user
            for digest, t in self._tokens.items()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest)
        ]

    @property
    def required(self) -> bool:
        return not self.local_mode

    def identify(self, authorization: str | None) -> Identity:
        if self.local_mode:
            return Identity(GUEST, (), True)
        if not authorization:
            raise AuthenticationError("Missing credentials: send 'Authorization: Bearer <token>'.")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError(
                "Unsupported credentials: send 'Authorization: Bearer <token>'."
            )
        # Looking up the hash of the token (not the token) leaks nothing useful
        # through timing: an attacker cannot steer the hash's prefix.
        found = self._tokens.get(hashlib.sha256(token.encode()).hexdigest())
        if found is None:
            raise AuthenticationError("Unknown token.")
        return Identity(found.user, tuple(found.groups), found.admin)


def allowed_groups(raw_template: Mapping[str, Any]) -> list[str] | None:
    """The refs a template is restricted to, or None when it is open to all."""
    metadata = raw_template.get("metadata") or {}
    annotations = metadata.get("annotations") or {} if isinstance(metadata, dict) else {}
    value = annotations.get(ALLOWED_GROUPS) if isinstance(annotations, dict) else None
    if value is None:
        return None
    if isinstance(value, list):
        items = [str(v) for v in value]
    else:
        items = str(value).split(",")
    return [item.strip() for item in items if item.strip()]


def may_run(identity: Identity, raw_template: Mapping[str, Any]) -> bool:
    allowed = allowed_groups(raw_template)
    if allowed is None or identity.admin:
        return True
    return identity.ref in allowed or any(g in allowed for g in identity.groups)


def check_may_run(identity: Identity, raw_template: Mapping[str, Any], ref: str) -> None:
    if not may_run(identity, raw_template):
        raise NotAllowedError(f"{identity.ref} may not run {ref}: it is restricted to some groups.")


def check_owner(identity: Identity, task_id: str, created_by: str | None) -> None:
    if not identity.owns(created_by):
        raise NotAllowedError(f"Task {task_id} belongs to another user.")
