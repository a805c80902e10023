"""Endpoint secrets: made here, shown once, stored encrypted with the server's key.

A secret is ``whsec_`` + base64 of 32 random bytes (the Standard Webhooks form). At rest it
is a Fernet token (AES-128-CBC with HMAC-SHA256, from the ``cryptography`` package) under a
key derived with HKDF from the server's secret key (``CREDITPOOL_SECRET_KEY``, or a key
file made on first use): a dump of the database alone cannot sign.
"""

from __future__ import annotations

import base64
import os
import secrets as random
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from creditpool.core.errors import CreditPoolError
from creditpool.settings import Settings

PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(random.token_bytes(SECRET_BYTES)).decode()


def secret_bytes(secret: str) -> bytes:
    """The key an HMAC is made with: the secret's decoded bytes."""
    return base64.b64decode(secret.removeprefix(PREFIX))


class SecretKeyMismatch(CreditPoolError):
    """A stored secret does not open with this server's key (the key changed)."""


class SecretBox:
    """Seals and opens endpoint secrets with a key derived from the server's secret key."""

    def __init__(self, server_key: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"creditpool webhook secrets"
        ).derive(server_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as error:
            raise SecretKeyMismatch(
                "a webhook secret does not open with this server's secret key"
                " (CREDITPOOL_SECRET_KEY changed?): rotate the endpoint's secret"
            ) from error

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        return cls(server_key(settings))


def server_key(settings: Settings) -> str:
    """``CREDITPOOL_SECRET_KEY``, else the key file (``CREDITPOOL_SECRET_KEY_FILE``), made
    with 32 random bytes and mode 0600 when it does not exist yet. Every server process of
    one database must use the same key: set it in production."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.secret_key_file or "creditpool-secret.key")
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = random.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    return key
