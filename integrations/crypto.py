"""Credentials at rest: a model field that stores Fernet ciphertext and reads back plain text."""

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models


def _fernet() -> Fernet:
    key = settings.FIELD_ENCRYPTION_KEY
    if not key:  # development only: settings refuse an empty key when DEBUG is off
        key = base64.urlsafe_b64encode(hashlib.sha256(settings.SECRET_KEY.encode()).digest())
    return _fernet_for(key)


@functools.lru_cache(maxsize=4)
def _fernet_for(key) -> Fernet:
    return Fernet(key)


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _decrypt(_fernet(), token)
    except InvalidToken as error:
        raise ValueError(
            "Stored credential cannot be decrypted with FIELD_ENCRYPTION_KEY"
        ) from error


@functools.lru_cache(maxsize=4096)
def _decrypt(fernet: Fernet, token: str) -> str:
    """Each stored ciphertext is decrypted once per process: rows with credentials are read
    often (every chat row joins its number), and the plain text is in memory when used anyway.
    Failures are not cached (``lru_cache`` keeps only results)."""
    return fernet.decrypt(token.encode()).decode()


def mask(value: str) -> str:
    """What an owner sees of a secret: never more than its last four characters."""
    if not value:
        return ""
    return "••••" + value[-4:] if len(value) > 8 else "••••"


class EncryptedTextField(models.TextField):
    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt(value)
