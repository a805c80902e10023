"""Same key and same arguments: the first result, nothing changed. Same key, other
arguments: IdempotencyConflict. A plain key is unique per organization; a ``ScopedKey`` is
unique in its scope, across organizations."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from creditpool.core.errors import IdempotencyConflict
from creditpool.core.keys import KEY_LENGTH_MAX as KEY_LENGTH_MAX
from creditpool.core.keys import SCOPE_LENGTH_MAX as SCOPE_LENGTH_MAX
from creditpool.core.keys import Key as Key
from creditpool.core.keys import ScopedKey as ScopedKey
from creditpool.core.keys import parse_key as parse_key
from creditpool.core.keys import validate_key as validate_key
from creditpool.repositories.idempotency import ScopeClaim, StoredKey


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
