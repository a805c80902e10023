"""Same key and same arguments: the first result, nothing changed. Same key, other
arguments: IdempotencyConflict. A plain key is unique per organization; a ``ScopedKey`` is
unique in its scope, across organizations."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from creditpool.core.errors import IdempotencyConflict, InvalidInput
from creditpool.repositories.idempotency import ScopeClaim, StoredKey

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


def fingerprint(operation: str, arguments: dict[str, Any]) -> str:
    canonical = json.dumps(
        [operation, arguments], sort_keys=True, default=str, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def replay(
    stored: StoredKey | None, key: str, operation: str, request_hash: str
) -> dict[str, Any] | None:
    """The stored result for this key (read with the org's lock), or None when it is new."""
    if stored is None:
        return None
    if stored.operation != operation or stored.request_hash != request_hash:
        raise IdempotencyConflict(
            f"idempotency key {key!r} was already used with other arguments",
            key=key,
        )
    return stored.result


def check_scope(claim: ScopeClaim | None, org_id: str, scoped: ScopedKey | None) -> None:
    """A scoped key already used in another organization, or by a request that is not a
    ledger change of an organization (its record is the HTTP layer's), is refused."""
    if scoped is None or claim is None:
        return
    if claim.org_id != org_id or not claim.ledger:
        raise IdempotencyConflict(
            f"idempotency key {scoped.key!r} was already used for another request",
            key=scoped.key,
        )
