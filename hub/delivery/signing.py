"""Standard Webhooks signing: ``whsec_`` secrets and the three ``webhook-*`` headers.

The signature itself comes from the reference ``standardwebhooks`` library (signed
content ``{id}.{timestamp}.{body}``, HMAC-SHA256 keyed with the base64-decoded secret).
During a secret rotation both the new and the old secret sign, space-separated, so a
receiver that still has the old secret keeps verifying until it switches.
"""

from __future__ import annotations

import base64
import functools
import os
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks.webhooks import Webhook

#: Prefix of every endpoint secret (Standard Webhooks convention).
SECRET_PREFIX = "whsec_"
#: Random bytes in a generated secret (24 bytes = 32 base64 characters, like Svix).
SECRET_BYTES = 24


def new_secret() -> str:
    """A fresh ``whsec_…`` secret."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def is_valid_secret(secret: str) -> bool:
    """True for a ``whsec_`` secret of 24 to 64 bytes of base64."""
    if not secret.startswith(SECRET_PREFIX):
        return False
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except ValueError:
        return False
    return 24 <= len(key) <= 64


@functools.lru_cache(maxsize=1024)
def _webhook(secret: str) -> Webhook:
    """The signer of one secret (it decodes the key once, not on every delivery)."""
    return Webhook(secret)


def sign_headers(
    webhook_id: str, at: datetime, body: str, secrets: Sequence[str]
) -> dict[str, str]:
    """The ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` headers."""
    signatures = " ".join(_webhook(secret).sign(webhook_id, at, body) for secret in secrets)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }
