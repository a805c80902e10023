"""Signed session cookies and the per-process view of sessions.

The cookie holds the session's claims signed with itsdangerous (HMAC-SHA1 over a key
derived from the secret) and a timestamp: tampering or age beyond ``session_ttl_s`` makes
it worthless. It is HttpOnly (no script reads it) and SameSite=Lax (no cross-site POST
carries it); Secure when the request came over HTTPS.
"""

from __future__ import annotations

import secrets
import threading
import time

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from creditpool.repositories import auth as keys_repo
from creditpool.sessions import service
from creditpool.sessions.models import SessionClaims
from creditpool.settings import Settings
from creditpool.storage.uow import Database

COOKIE = "creditpool_session"
SALT = "creditpool.session.v1"
COOKIE_LENGTH_MAX = 4096
STAFF_KEY_CHECK_TTL_S = 5.0  # a revoked staff key ends its sessions within this many seconds


class SessionCodec:
    def __init__(self, secret: str, max_age_s: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=SALT)
        self.max_age_s = max_age_s

    def dumps(self, claims: SessionClaims) -> str:
        return self._serializer.dumps(claims.model_dump(mode="json"))

    def loads(self, value: str) -> SessionClaims | None:
        if len(value) > COOKIE_LENGTH_MAX:
            return None
        try:
            data = self._serializer.loads(value, max_age=self.max_age_s)
            return SessionClaims.model_validate(data)
        except (BadSignature, ValidationError):  # expired is a BadSignature too
            return None


class Sessions:
    """One per application: the codec (its secret read once from settings or the
    database) and a short cache of staff keys' liveness."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._codec: SessionCodec | None = None
        self._lock = threading.Lock()
        self._staff_keys: dict[str, tuple[float, bool]] = {}

    @property
    def codec(self) -> SessionCodec:
        with self._lock:
            if self._codec is None:
                secret = self.settings.session_secret or service.session_secret(self.db)
                self._codec = SessionCodec(secret, self.settings.session_ttl_s)
            return self._codec

    def new_claims(
        self,
        role: str,
        *,
        org_id: str | None,
        user_id: str | None,
        name: str,
        key_id: str | None = None,
    ) -> SessionClaims:
        return SessionClaims(
            role=role,
            org_id=org_id,
            user_id=user_id,
            name=name,
            key_id=key_id,
            csrf=secrets.token_urlsafe(24),
        )

    def read(self, request: Request) -> SessionClaims | None:
        """The request's live session, or None (no cookie, bad signature, expired, or the
        staff key behind it revoked)."""
        value = request.cookies.get(COOKIE)
        if not value:
            return None
        claims = self.codec.loads(value)
        if claims is None:
            return None
        if claims.key_id is not None and not self._key_live(claims.key_id):
            return None
        return claims

    def start(self, response: Response, request: Request, claims: SessionClaims) -> None:
        response.set_cookie(
            COOKIE,
            self.codec.dumps(claims),
            max_age=self.settings.session_ttl_s,
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )

    def end(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")

    def _key_live(self, key_id: str) -> bool:
        now = time.monotonic()
        hit = self._staff_keys.get(key_id)
        if hit is not None and now - hit[0] < STAFF_KEY_CHECK_TTL_S:
            return hit[1]
        with self.db.read() as tx:
            row = keys_repo.get(tx.conn, key_id)
        live = row is not None and row.revoked_at is None
        if len(self._staff_keys) > 10_000:
            self._staff_keys.clear()
        self._staff_keys[key_id] = (now, live)
        return live
