"""Who is calling: bearer tokens, local mode, and what an identity may do.

Tokens are configured as the hex SHA-256 of the secret (``auth.tokens`` in the
config file), so the file never holds a usable credential. In local mode (bound to
loopback, no tokens configured) every caller is ``user:default/guest``, an admin.

Roles say what an identity may do beyond running templates (``auth.roles`` maps a
role to user and group refs; a token may list ``roles`` of its own; an admin holds
them all): ``templates:author`` may dry-run any template body, ``workers:read`` may
list the workers.

Templates restrict who may run them with the annotation
``falsework.dev/allowed-groups``: a comma-separated list of group (or user) refs.
A caller whose ref or one of whose groups is listed may run the template; admins
always may; a template without the annotation is open to every caller. To everyone
else a restricted template does not exist: every route answers as for an unknown
one (404), so its name is no hint either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from falsework.config import ROLES, Role, Settings, TokenConfig
from falsework.errors import AuthenticationError, NotAllowedError, NotFoundError
from falsework.templates import Template, TemplateCatalog

GUEST = "user:default/guest"
ALLOWED_GROUPS = "falsework.dev/allowed-groups"
AUTHOR: Role = "templates:author"
WORKERS_READ: Role = "workers:read"


@dataclass(frozen=True)
class Identity:
    ref: str
    groups: tuple[str, ...] = field(default=())
    admin: bool = False
    roles: frozenset[Role] = field(default=frozenset())

    def user_context(self) -> dict[str, Any]:
        """What a template sees as ``user`` (Backstage: ``spec.user``)."""
        return {"ref": self.ref}

    def owns(self, created_by: str | None) -> bool:
        return self.admin or created_by == self.ref

    def has(self, role: Role) -> bool:
        return self.admin or role in self.roles

    @property
    def all_roles(self) -> list[Role]:
        return [role for role in ROLES if self.has(role)]


class Authenticator:
    """Turns an ``Authorization`` header into an :class:`Identity`."""

    def __init__(self, settings: Settings) -> None:
        self.local_mode = settings.local_mode
        self._tokens: dict[str, TokenConfig] = {
            t.sha256.strip().lower(): t for t in settings.auth.tokens
        }
        self._holders = {role: frozenset(refs) for role, refs in settings.auth.roles.items()}
        self._identities: dict[str, Identity] = {}
        # frozen: one for every request of local mode
        self._guest = Identity(GUEST, (), True, frozenset(ROLES))

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
            return self._guest
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
        digest = hashlib.sha256(token.encode()).hexdigest()
        known = self._identities.get(digest)
        if known is not None:
            return known
        found = self._tokens.get(digest)
        if found is None:
            raise AuthenticationError("Unknown token.")
        identity = self._identity(found)
        self._identities[digest] = identity
        return identity

    def _identity(self, token: TokenConfig) -> Identity:
        refs = {token.user, *token.groups}
        roles = set(token.roles)
        roles.update(role for role, holders in self._holders.items() if refs & holders)
        return Identity(token.user, tuple(token.groups), token.admin, frozenset(roles))


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


class HiddenTemplateError(NotFoundError):
    """A restricted template the caller may not run: answered as an unknown one
    (the same 404 and message), recorded in the audit trail as a denial."""

    def __init__(self, message: str, template: str) -> None:
        super().__init__(message)
        self.template = template

    @property
    def name(self) -> str:
        return "NotFoundError"  # never a hint that the template exists


def runnable_template(identity: Identity, catalog: TemplateCatalog, ref: str) -> Template:
    """The catalog template ``ref`` if the caller may run it. One they may not run
    is, to them, one that does not exist: the same 404 and message as an unknown ref."""
    template = catalog.get(ref)
    if not may_run(identity, template.raw):
        shown = f"template:{template.namespace.lower()}/{template.name.lower()}"
        raise HiddenTemplateError(f"Template {shown} not found", shown)
    return template


def check_role(identity: Identity, role: Role, what: str) -> None:
    if not identity.has(role):
        raise NotAllowedError(
            f"{identity.ref} may not {what}: that needs the {role} role "
            "(an admin grants it with auth.roles in the config)."
        )


def check_owner(identity: Identity, task_id: str, created_by: str | None) -> None:
    if not identity.owns(created_by):
        raise NotAllowedError(f"Task {task_id} belongs to another user.")
