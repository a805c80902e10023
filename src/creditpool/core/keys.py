"""Idempotency keys as callers send them: a plain key, unique per organization, or a
``ScopedKey``, unique in its scope across organizations. Pure: the commands (which the
client imports) and the idempotency service both use it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from creditpool.core.errors import InvalidInput

KEY_LENGTH_MAX = 255
SCOPE_LENGTH_MAX = 32


@dataclass(frozen=True, slots=True)
class ScopedKey:
    """An idempotency key that belongs to a scope rather than to one organization: the HTTP
    API passes the calling API key's id as the scope, so that the key a client sent takes
    effect in one organization only. Reused in another organization, or for a request of
    another kind in the same scope, it is an IdempotencyConflict. Its record in the
    organization is kept under ``stored`` (a hash of scope and key)."""

    scope: str
    key: str

    def __post_init__(self) -> None:
        validate_key(self.key)
        if not isinstance(self.scope, str) or not 0 < len(self.scope) <= SCOPE_LENGTH_MAX:
            raise InvalidInput(f"an idempotency scope must be 1 to {SCOPE_LENGTH_MAX} characters")

    @property
    def stored(self) -> str:
        return hashlib.sha256(f"{self.scope}\0{self.key}".encode()).hexdigest()


Key = str | ScopedKey


def parse_key(key: Key | None) -> tuple[str | None, ScopedKey | None]:
    """The key the organization's record is stored under, and the scoped key if it is one."""
    if isinstance(key, ScopedKey):
        return key.stored, key
    return validate_key(key), None


def validate_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key or len(key) > KEY_LENGTH_MAX or not key.isprintable():
        raise InvalidInput(f"idempotency key must be 1 to {KEY_LENGTH_MAX} printable characters")
    return key
