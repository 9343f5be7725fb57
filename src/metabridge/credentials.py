"""Encryption of stored credentials (access tokens, app secrets) with Fernet (AES-128-CBC + HMAC).

The key comes from ``METABRIDGE_SECRET_KEY``; when unset, one is generated once into the data folder
(file mode 0600) so a new user needs no set-up. Losing the key means re-entering the tokens, never
leaking them: the API never returns a stored secret and logs never contain one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "secret.key"


class SecretKeyError(RuntimeError):
    """The configured key is malformed, or a stored secret was encrypted with another key."""


def load_or_create_key(configured: str, data_dir: Path) -> bytes:
    """The configured key, else the data folder's key file, created on first use."""
    if configured:
        key = configured.encode()
    else:
        path = data_dir / KEY_FILE
        if path.exists():
            key = path.read_bytes().strip()
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            key = Fernet.generate_key()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(key)
    try:
        Fernet(key)
    except (ValueError, TypeError):
        raise SecretKeyError(
            "METABRIDGE_SECRET_KEY must be a Fernet key (32 url-safe base64 bytes); "
            "generate one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        ) from None
    return key


class SecretBox:
    """Encrypts and decrypts the credentials stored in the database."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                "a stored credential cannot be decrypted with the current METABRIDGE_SECRET_KEY"
            ) from None


def hash_api_key(key: str) -> str:
    """API keys are stored as SHA-256 only; a database dump does not reveal them."""
    return hashlib.sha256(key.encode()).hexdigest()


def same_key(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
