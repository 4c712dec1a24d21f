"""Check the signature of every request webhook_receiver.py recorded, and print its event.

    .venv/bin/python docs/examples/verify_webhooks.py whsec_... [received.jsonl]

A receiver checks three headers (Standard Webhooks): `webhook-signature` must hold
`v1,` + base64(HMAC-SHA256(key, f"{webhook-id}.{webhook-timestamp}.{body}")), where key is the
base64-decoded part of the secret after `whsec_`; `webhook-timestamp` must be recent (replays);
and `webhook-id` is the same on every retry of one message (duplicates).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import time
from pathlib import Path


def verify(secret: str, headers: dict[str, str], body: str, tolerance_s: int = 300) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    fresh = abs(time.time() - int(headers["webhook-timestamp"])) <= tolerance_s
    given = [s.partition(",")[2] for s in headers["webhook-signature"].split()]
    return fresh and any(hmac.compare_digest(expected, s) for s in given)


secret = sys.argv[1]
for line in Path(sys.argv[2] if len(sys.argv) > 2 else "received.jsonl").read_text().splitlines():
    request = json.loads(line)
    message = json.loads(request["body"])
    ok = verify(secret, request["headers"], request["body"])
    expense = message["data"]["expense"]
    print(  # noqa: T201 -- a script for people: it prints
        "verified" if ok else "FORGED",
        request["headers"]["webhook-id"],
        message["type"],
        f"expense {expense['id']}",
    )
