"""Portal links and the session secret.

A portal link carries 32 random bytes; only their SHA-256 is stored, so the table never
holds a usable link. Redeeming marks the row used in the same statement that checks it, so
a link opens at most one session however many requests race for it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from creditpool import validation as check
from creditpool.core.errors import CreditPoolError, InvalidInput
from creditpool.orgs.service import require_org
from creditpool.repositories import sessions as repository
from creditpool.sessions.models import PortalLink, PortalRole
from creditpool.storage.uow import Database, Tx

TOKEN_BYTES = 32
TOKEN_LENGTH_MAX = 128
SESSION_SECRET = "session"
# Used and expired tokens are kept this long (to tell "already used" from "unknown").
TOKEN_RETENTION = timedelta(days=1)


class LinkExpired(CreditPoolError):
    code = "link_expired"
    status = 410
    title = "This sign-in link has expired or was already used"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def mint(tx: Tx, org_id: str, user_id: str, role: str, ttl: timedelta) -> PortalLink:
    require_org(tx, org_id)
    user_id = check.identifier(user_id, "user_id")
    try:
        parsed = PortalRole(role)
    except ValueError:
        raise InvalidInput("role must be admin or member") from None
    repository.delete_expired_tokens(tx.conn, tx.now - TOKEN_RETENTION)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires_at = tx.now + ttl
    repository.insert_token(
        tx.conn,
        token_hash=token_hash(token),
        org_id=org_id,
        user_id=user_id,
        role=parsed.value,
        created_at=tx.now,
        expires_at=expires_at,
        used_at=None,
    )
    return PortalLink(
        token=token, org_id=org_id, user_id=user_id, role=parsed, expires_at=expires_at
    )


def redeem(tx: Tx, token: str) -> PortalLink | None:
    """The link's identity, once; None for a token never minted. LinkExpired for a token
    already used or past its expiry."""
    if not token or len(token) > TOKEN_LENGTH_MAX:
        return None
    digest = token_hash(token)
    row = repository.get_token(tx.conn, digest)
    if row is None:
        return None
    if not repository.use_token(tx.conn, digest, tx.now):
        raise LinkExpired("open a fresh link from the product: each link works once, briefly")
    return PortalLink(
        token="",
        org_id=row.org_id,
        user_id=row.user_id,
        role=PortalRole(row.role),
        expires_at=row.expires_at,
    )


def open_link(db: Database, org_id: str, user_id: str, role: str, ttl: timedelta) -> PortalLink:
    """Mint a one-time link (one transaction)."""
    with db.write() as tx:
        return mint(tx, org_id, user_id, role, ttl)


def use_link(db: Database, token: str) -> PortalLink | None:
    """Redeem a link (one transaction): see ``redeem``."""
    with db.write() as tx:
        return redeem(tx, token)


def session_secret(db: Database) -> str:
    """The per-database signing secret, created by whichever process asks first; every
    server process on the database then signs and checks cookies with the same one."""
    with db.read() as tx:
        found = repository.get_secret(tx.conn, SESSION_SECRET)
    if found is not None:
        return found
    try:
        with db.write() as tx:
            repository.insert_secret(tx.conn, SESSION_SECRET, secrets.token_urlsafe(48), tx.now)
    except IntegrityError:
        pass  # another process created it first: use theirs
    with db.read() as tx:
        found = repository.get_secret(tx.conn, SESSION_SECRET)
    assert found is not None
    return found
