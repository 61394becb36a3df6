"""Request authentication (v2 signature, nonce, timestamp) and the per-minute quota."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from bridge.udesk.errors import CODE_BAD_SIGNATURE, CODE_NONCE_OR_TIMESTAMP
from bridge.udesk.signing import SIGN_VERSION, verify_sign

AUTH_PARAMS = frozenset({"email", "timestamp", "nonce", "sign", "sign_version"})
# The answer to a timestamp further than the tolerance from Udesk's clock.
TIMESTAMP_EXPIRED = {"code": CODE_NONCE_OR_TIMESTAMP, "message": "timestamp expired"}


class Gatekeeper:
    """Decides whether a request may pass; the answer is an error body or None."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        timestamp_tolerance: float = 300.0,
        nonce_ttl: float = 900.0,
    ) -> None:
        self.clock = clock
        self.timestamp_tolerance = timestamp_tolerance
        self.nonce_ttl = nonce_ttl
        self._nonces: dict[str, float] = {}
        self._accepted: deque[float] = deque()

    def check(self, query: Mapping[str, str], email: str, api_token: str) -> dict[str, Any] | None:
        email_given = query.get("email", "")
        timestamp = query.get("timestamp", "")
        nonce = query.get("nonce", "")
        sign = query.get("sign", "")
        if (
            not (email_given and timestamp and nonce and sign)
            or query.get("sign_version") != SIGN_VERSION
            or email_given != email
            or not verify_sign(email, api_token, timestamp, nonce, sign)
        ):
            return {"code": CODE_BAD_SIGNATURE, "message": "sign error"}
        now = self.clock()
        try:
            skew = abs(now - int(timestamp))
        except ValueError:
            skew = float("inf")
        if skew > self.timestamp_tolerance:
            return dict(TIMESTAMP_EXPIRED)
        self._forget_nonces(now)
        if nonce in self._nonces:
            return {"code": CODE_NONCE_OR_TIMESTAMP, "message": "nonce already used"}
        # Only a correctly signed request uses up its nonce, so a forger cannot burn them.
        self._nonces[nonce] = now
        return None

    def over_quota(self, per_minute: int | None, now: float) -> bool:
        """Counts accepted calls in a sliding minute; refused calls do not count, so a
        client that backs off recovers within a minute."""
        while self._accepted and now - self._accepted[0] >= 60.0:
            self._accepted.popleft()
        if per_minute is not None and len(self._accepted) >= per_minute:
            return True
        self._accepted.append(now)
        return False

    def _forget_nonces(self, now: float) -> None:
        # Insertion order is arrival order, so the stale ones are at the front.
        while self._nonces:
            oldest, seen = next(iter(self._nonces.items()))
            if now - seen <= self.nonce_ttl:
                break
            del self._nonces[oldest]
