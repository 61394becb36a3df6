"""Udesk Open API v2 request signing.

sign = sha256("{email}&{api_token}&{timestamp}&{nonce}&v2"), lower-case hex, sent in the
query string together with email, timestamp (Unix seconds), nonce and sign_version=v2.
The simulator verifies with the same function, so both sides share one definition.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SIGN_VERSION = "v2"


def compute_sign(email: str, api_token: str, timestamp: int | str, nonce: str) -> str:
    raw = f"{email}&{api_token}&{timestamp}&{nonce}&{SIGN_VERSION}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def signed_params(
    email: str, api_token: str, *, now: float | None = None, nonce: str | None = None
) -> dict[str, str]:
    """Fresh auth query parameters; call once per attempt (a nonce is single use)."""
    timestamp = int(time.time() if now is None else now)
    nonce = nonce or secrets.token_hex(16)
    return {
        "email": email,
        "timestamp": str(timestamp),
        "nonce": nonce,
        "sign_version": SIGN_VERSION,
        "sign": compute_sign(email, api_token, timestamp, nonce),
    }


def verify_sign(email: str, api_token: str, timestamp: str, nonce: str, sign: str) -> bool:
    return hmac.compare_digest(compute_sign(email, api_token, timestamp, nonce), sign.lower())
