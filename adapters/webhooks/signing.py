"""Standard Webhooks signatures: the `whsec_` secrets and the headers that sign one request.

The signature is `v1,` + base64 of HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`,
keyed with the base64-decoded part of the secret after `whsec_`. The body is signed byte for
byte as it is sent, so it is never encoded or decoded on the way.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac

# The subscriptions' secrets are made by the core, as the specification writes them.
from expense_core.webhooks import new_secret

PREFIX = "whsec_"
__all__ = ["PREFIX", "headers", "key_of", "new_secret", "sign"]


# A worker signs thousands of messages a second with a few secrets: each is decoded once.
@functools.lru_cache(maxsize=1024)
def key_of(secret: str) -> bytes:
    """The HMAC key a `whsec_` secret stands for.

    Raises:
        ValueError: the secret has no `whsec_` prefix, is not base64 or is empty.
    """
    if not secret.startswith(PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    key = base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value (`v1,<base64>`) for one message."""
    mac = hmac.new(key_of(secret), f"{msg_id}.{timestamp}.".encode(), hashlib.sha256)
    mac.update(body)  # the body as it is, not copied behind the prefix
    digest = mac.digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one signed request: id, timestamp (unix seconds), signature, JSON type.

    `msg_id` is the same on every retry of a message; `timestamp` is the attempt's own, so a
    retry is signed again.
    """
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }
