"""Same key and same arguments: the first result, nothing changed. Same key, other
arguments: IdempotencyConflict. Keys are unique per organization."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from creditpool.core.errors import IdempotencyConflict, InvalidInput
from creditpool.idempotency.repository import StoredKey

KEY_LENGTH_MAX = 255


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
