"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

``v1,`` + base64 of HMAC-SHA256 over ``{id}.{timestamp}.{body}`` with the secret's decoded
bytes; several signatures are separated by spaces (during a secret rotation both the new
and the old secret sign). Written here rather than taken from the ``standardwebhooks``
package: it is five lines of the standard library, and the package brings an API client's
dependencies (attrs, dateutil, Deprecated) into the server. The tests verify every
delivery with the official package, so the two cannot disagree unnoticed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from creditpool.webhooks.secrets import secret_bytes


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one delivery attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets),
        "content-type": "application/json",
    }
