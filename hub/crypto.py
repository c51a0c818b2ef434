"""Secrets at rest: Fernet encryption for stored secrets, hashes for API keys and passwords."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    """Encrypts and decrypts small secrets with the hub's key."""

    def __init__(self, key: str) -> None:
        # Any string works as a key: it is stretched to the 32 bytes Fernet needs.
        digest = hashlib.sha256(key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))
        self._key = key.encode()

    def derive(self, label: str, size: int = 32) -> bytes:
        """A stable secret for one purpose, derived from the hub's key (no storage needed)."""
        return hmac.new(self._key, f"smshub:{label}".encode(), hashlib.sha256).digest()[:size]

    def encrypt(self, plain: str) -> str:
        """Encrypt a string."""
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        """Decrypt a string encrypted with :meth:`encrypt` (ValueError if tampered or wrong key)."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("stored secret cannot be decrypted with this SECRET_KEY") from exc

    def encrypt_json(self, value: dict[str, Any]) -> str:
        """Encrypt a JSON-able dict."""
        return self.encrypt(json.dumps(value, separators=(",", ":"), sort_keys=True))

    def decrypt_json(self, token: str | None) -> dict[str, Any]:
        """Decrypt a dict encrypted with :meth:`encrypt_json` (empty for None)."""
        if not token:
            return {}
        value = json.loads(self.decrypt(token))
        return value if isinstance(value, dict) else {}


def load_or_create_secret_key(var_dir: Path) -> str:
    """Read ``var_dir/secret.key``, creating it (mode 600) on first run."""
    path = var_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def hash_token(token: str) -> str:
    """SHA-256 of a high-entropy token (API keys): fast to check, useless to a thief."""
    return hashlib.sha256(token.encode()).hexdigest()
