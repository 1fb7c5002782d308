"""Optional per-credential request rate limits: one token bucket per (dialect, credential).

Configured in [rate_limits] (see gateway/config.py):

    [rate_limits]
    per_second = 10.0          # every credential: sustained requests per second (0: no limit)
    burst = 20                 # bucket size: requests allowed at once after a quiet spell
    [rate_limits.credentials]  # per key id, overrides per_second (0: no limit for that key)
    AKIDEXAMPLE = 50.0

Only authenticated requests are limited (the credential comes from the dialect's
authenticate()); buckets exist only for configured keys that signed a request,
so their number is bounded by the config. A refused request raises
RateLimitedError, which each dialect answers with its own throttling code.
"""
from __future__ import annotations

import threading
from typing import Callable

from gateway.config import RateLimits
from core.errors import RateLimitedError
from core.validation import convert


class TokenBucket:
    def __init__(self, rate: float, burst: float, now: float):
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = now

    def take(self, now: float) -> bool:
        # A clock that steps back must not mint tokens, nor take them away.
        elapsed = max(0.0, now - self.updated)
        self.updated = max(self.updated, now)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateLimiter:
    def __init__(self, settings: RateLimits | dict, clock: Callable[[], float]):
        if isinstance(settings, dict):
            settings = convert(settings, RateLimits, ("rate_limits",))
        self.default_rate = settings.per_second
        self.burst = settings.burst
        self.per_credential = dict(settings.credentials)
        self.clock = clock
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.default_rate > 0 or any(rate > 0 for rate in self.per_credential.values())

    def rate_for(self, credential: str) -> float:
        return self.per_credential.get(credential, self.default_rate)

    def check(self, dialect: str, credential: str | None) -> None:
        """Take one token for this credential, or raise RateLimitedError."""
        if credential is None or not self.enabled:
            return
        rate = self.rate_for(credential)
        if rate <= 0:
            return
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get((dialect, credential))
            if bucket is None:
                burst = float(self.burst) if self.burst else max(1.0, rate)
                bucket = self._buckets[(dialect, credential)] = TokenBucket(rate, burst, now)
            allowed = bucket.take(now)
        if not allowed:
            raise RateLimitedError(f"{dialect} credential over {rate:g} requests/s")
