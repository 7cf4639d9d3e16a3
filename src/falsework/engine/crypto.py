"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) from the ``cryptography`` package."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from falsework.errors import FalseworkError, InputError

KEY_FILE = "secret.key"


class SecretBox:
    """Encrypts a task's secrets for storage and decrypts them for its worker."""

    def __init__(self, key: str | bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError as exc:
            raise InputError(
                "The secret key is not a Fernet key (32 url-safe base64-encoded bytes; "
                "see docs/operations.md for making one)"
            ) from exc

    @classmethod
    def from_key_or_file(cls, secret_key: str | None, key_file: Path) -> SecretBox:
        """Use ``secret_key``, else ``key_file`` (created on first start)."""
        if secret_key:
            return cls(secret_key)
        return cls(load_or_create_key(key_file))

    def seal(self, secrets: dict[str, str] | None) -> str | None:
        if not secrets:
            return None
        return self._fernet.encrypt(json.dumps(secrets).encode()).decode("ascii")

    def open(self, token: str | None) -> dict[str, str]:
        if not token:
            return {}
        try:
            data = json.loads(self._fernet.decrypt(token.encode("ascii")))
        except InvalidToken as exc:
            raise FalseworkError(
                "A task's secrets cannot be decrypted: FALSEWORK_SECRET_KEY differs "
                "from the key they were stored with"
            ) from exc
        return {str(k): str(v) for k, v in data.items()}


def load_or_create_key(path: Path) -> bytes:
    """Read the key file, or create it (mode 0600) without racing another process."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key
