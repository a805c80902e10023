"""Create, authenticate and revoke API keys.

A key reads ``cpk_<id>_<secret>``: the id finds the row, the secret is compared with its
stored SHA-256 in constant time. Secrets are 32 random bytes, so a slow password hash
would add cost and no safety. The secret is shown once, at creation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from creditpool import validation as check
from creditpool.auth.models import ApiKey, ApiKeyWithSecret, Role
from creditpool.core.errors import InvalidInput, NotFound
from creditpool.orgs.service import require_org
from creditpool.queries import Keys
from creditpool.repositories import auth as repository
from creditpool.storage.types import DbRow
from creditpool.storage.uow import Tx

PREFIX = "cpk"
TOKEN_LENGTH_MAX = 128


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(
    tx: Tx, role: str, org_id: str | None, user_id: str | None, name: str | None
) -> ApiKeyWithSecret:
    try:
        parsed = Role(role)
    except ValueError:
        raise InvalidInput(f"role must be one of {', '.join(r.value for r in Role)}") from None
    scoped = parsed in (Role.ADMIN, Role.MEMBER)
    if scoped and org_id is None:
        raise InvalidInput(f"a {parsed.value} key belongs to one organization: give --org")
    if not scoped and org_id is not None:
        raise InvalidInput(f"a {parsed.value} key spans every organization: give no --org")
    if parsed is Role.MEMBER and user_id is None:
        raise InvalidInput("a member key belongs to one user: give --user")
    if parsed is not Role.MEMBER and user_id is not None:
        raise InvalidInput("only member keys belong to a user")
    if org_id is not None:
        require_org(tx, org_id)
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    repository.insert(
        tx.conn,
        id=key_id,
        name=check.required_text(name or f"{parsed.value}-{key_id[:6]}", "name"),
        role=parsed.value,
        org_id=org_id,
        user_id=None if user_id is None else check.identifier(user_id, "user_id"),
        secret_hash=_hash(secret),
        created_at=tx.now,
    )
    row = repository.get(tx.conn, key_id)
    assert row is not None
    token = f"{PREFIX}_{key_id}_{secret}"
    return ApiKeyWithSecret.model_validate({**to_model(row).model_dump(), "secret": token})


def authenticate(tx: Tx, token: str) -> ApiKey | None:
    """The live key for ``token``, or None (unknown, malformed, wrong secret, revoked)."""
    if len(token) > TOKEN_LENGTH_MAX:
        return None
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not key_id or not secret:
        return None
    row = repository.get(tx.conn, key_id)
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.secret_hash, _hash(secret)):
        return None
    return to_model(row)


def revoke(tx: Tx, key_id: str, org_id: str | None = None) -> tuple[ApiKey, bool]:
    """The key revoked (at once: the first revocation stands), and whether this call
    revoked it. ``org_id``: the key must belong to it; one of another organization (or of
    none) is NotFound, as one that does not exist."""
    found = repository.get(tx.conn, key_id)
    if found is None or (org_id is not None and found.org_id != org_id):
        where = "" if org_id is None else f" in organization {org_id!r}"
        raise NotFound(f"key {key_id!r} not found{where}")
    revoked = repository.revoke(tx.conn, key_id, tx.now) == 1
    row = repository.get(tx.conn, key_id)
    assert row is not None
    return to_model(row), revoked


def list_keys(tx: Tx, asked: Keys) -> list[ApiKey]:
    """In the order they were made (then by id): after the key ``after``."""
    return [to_model(r) for r in repository.list_keys(tx.conn, asked)]


def to_model(row: DbRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        org_id=row.org_id,
        user_id=row.user_id,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
