"""Signed access tokens (the classic app uses python-jose's JWT; HMAC-SHA256 here)."""

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from app.core.config import settings

ALGORITHM = "HS256"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def create_access_token(subject: Any, expires_minutes: int | None = None) -> str:
    minutes = expires_minutes or settings.ACCESS_TOKEN_EXPIRE_MINUTES
    payload = _b64(json.dumps({"exp": time.time() + minutes * 60, "sub": str(subject)}).encode())
    signature = hmac.new(settings.SECRET_KEY.encode(), payload.encode(), hashlib.sha256)
    return f"{payload}.{_b64(signature.digest())}"


def decode_token(token: str) -> dict:
    payload, _, signature = token.partition(".")
    expected = hmac.new(settings.SECRET_KEY.encode(), payload.encode(), hashlib.sha256)
    if not hmac.compare_digest(_b64(expected.digest()), signature):
        raise ValueError("bad signature")
    data = json.loads(_unb64(payload))
    if data["exp"] < time.time():
        raise ValueError("expired")
    return data


def get_password_hash(password: str) -> str:
    salt = hashlib.sha256(password.encode()).hexdigest()[:16]
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 1000).hex()
    return f"{salt}${digest}"


def verify_password(plain_password: str, hashed_password: str) -> bool:
    return hmac.compare_digest(get_password_hash(plain_password), hashed_password)
