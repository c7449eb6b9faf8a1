"""Secrets for the embedded default, generated once into a git-ignored folder.

Production passes every secret through the environment (or ``NAME_FILE``) and
sets ``CONSENTRY_GENERATE_SECRETS=false`` so a missing one stops start-up
instead of silently minting a new key. Locally, the first start writes each
secret into ``CONSENTRY_STATE_DIR`` with owner-only permissions and every
later start, and every process (web, worker, beat), reads the same file.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.exceptions import ImproperlyConfigured

from consentry.env import env_raw


def random_token() -> str:
    return secrets.token_urlsafe(48)


def random_key_b64() -> str:
    """A fresh 256-bit key, base64 encoded."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def ed25519_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def secret(name: str, *, state_dir: Path, generate: bool, make: Callable[[], str]) -> str:
    """Read secret ``name`` from env/file, else from (or into) the local state folder."""
    value = env_raw(name)
    if value:
        return value
    path = state_dir / "secrets" / name.lower()
    if path.exists():
        return path.read_text().strip()
    if not generate:
        raise ImproperlyConfigured(
            f"{name} is not set. Set it (or {name}_FILE) in the environment; see the environment table in README.md."
        )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = make()
    # O_EXCL: if two processes start at once, the second reads the first's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value
