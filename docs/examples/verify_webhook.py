"""Verify an smshub webhook (Standard Webhooks) with Python's standard library only.

    WEBHOOK_SECRET=whsec_... python3 verify_webhook.py WEBHOOK_ID WEBHOOK_TIMESTAMP \
        WEBHOOK_SIGNATURE < body.json

The three arguments are the request's ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` headers, stdin is the raw body exactly as received. Exit code 0 and
"ok" when the delivery is genuine, 1 and the reason otherwise. In a web framework, call
``verify()`` with the raw request body (bytes, before any JSON parsing) and the headers.
"""

import base64
import hashlib
import hmac
import os
import sys
import time

#: Deliveries signed more than this many seconds away from our clock are refused (replays).
TOLERANCE_S = 5 * 60


def verify(secret: str, webhook_id: str, timestamp: str, signatures: str, body: bytes) -> None:
    """Raise ValueError unless one of ``signatures`` signs this body with ``secret``."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise ValueError("webhook-timestamp is not a number") from None
    if abs(time.time() - sent_at) > TOLERANCE_S:
        raise ValueError("webhook-timestamp is more than 5 minutes away")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = webhook_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    # During a secret rotation the header holds two signatures, space-separated.
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            return
    raise ValueError("no signature matches")


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    webhook_id, timestamp, signatures = sys.argv[1:4]
    try:
        verify(
            os.environ.get("WEBHOOK_SECRET", ""),
            webhook_id,
            timestamp,
            signatures,
            sys.stdin.buffer.read(),
        )
    except ValueError as exc:
        print(f"rejected: {exc}", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
