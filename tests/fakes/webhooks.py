"""What gateways put on their webhooks, written from the providers' docs and kept apart
from the connectors' code, so a test signed here checks the connector against the docs."""

from __future__ import annotations

import hashlib
import hmac
import re


def vonage_sig(params: dict[str, str], secret: str, method: str) -> str:
    """Vonage's ``sig``: sorted ``&name=value`` with '&'/'=' in values as '_', then hashed.

    "md5hash" is MD5 of that string followed by the secret; the others are HMACs.
    """
    joined = "".join(
        "&" + name + "=" + re.sub("[&=]", "_", value) for name, value in sorted(params.items())
    )
    if method == "md5hash":
        return hashlib.md5((joined + secret).encode()).hexdigest()
    return hmac.new(secret.encode(), joined.encode(), getattr(hashlib, method)).hexdigest()
