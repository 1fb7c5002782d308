"""Who may use the console and /_cardgate/health, how fast, and the one log line per request.

On by default only when the gateway is bound to loopback. Bound anywhere else it is off unless
`[console] enabled = true` comes with a password or token. When a password or token is
configured it is asked for on loopback too. Browsers send the password as HTTP Basic (any user
name: the browser's own prompt is the login form); scripts may send `Bearer <token>`. Every
console request, refused ones too, takes a token from one bucket (gateway/ratelimit.py) and
is logged without its body.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import logging
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.config import Console, RateLimits
from core.errors import RateLimitedError
from gateway.ratelimit import RateLimiter

access_log = logging.getLogger("cardgate.access")
log = logging.getLogger("cardgate.console")

REALM = 'Basic realm="cardgate console", charset="UTF-8"'
BUCKET = ("console", "console")  # one bucket for all console clients: bounded, whoever asks


@dataclass(frozen=True)
class Decision:
    on: bool
    why: str  # for the start-up log line


def decide(settings: Console, loopback: bool) -> Decision:
    """Is the console served? `loopback`: the gateway is bound to a loopback address only."""
    has_secret = bool(settings.password or settings.token)
    if settings.enabled is False:
        return Decision(False, "[console] enabled = false")
    if loopback:
        return Decision(True, "bound to loopback" + (", password or token required" if has_secret else ""))
    if settings.enabled and has_secret:
        return Decision(True, "[console] enabled with a password or token")
    if settings.enabled:
        return Decision(False, "[console] enabled = true but not bound to loopback and no password or token set")
    return Decision(False, "not bound to loopback (set [console] enabled = true with a password or token)")


def presented_secret(authorization: str | None) -> bytes | None:
    """The password of HTTP Basic or the token of Bearer, as bytes; None when there is neither."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip().encode("utf-8")
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        return decoded.partition(b":")[2]
    return None


class Guard:
    """Checks each console request: rate, then credentials. Answers the refusal, or None to go on."""

    def __init__(self, settings: Console, clock=time.time):
        self.secrets = [s.encode("utf-8") for s in (settings.password, settings.token) if s]
        self.limiter = RateLimiter(RateLimits(per_second=settings.per_second, burst=settings.burst), clock)

    def authorized(self, request: Request) -> bool:
        if not self.secrets:
            return True
        given = presented_secret(request.headers.get("authorization"))
        if given is None:
            return False
        # Compared with every configured secret, each in constant time: how long the check took
        # tells nothing about how much of a secret was right, nor which one was tried.
        matches = [hmac.compare_digest(given, secret) for secret in self.secrets]
        return any(matches)

    def refusal(self, request: Request) -> Response | None:
        try:
            self.limiter.check(*BUCKET)
        except RateLimitedError:
            return JSONResponse({"error": "rate_limited", "message": "too many console requests; try again shortly"},
                                status_code=429, headers={"retry-after": "1"})
        if not self.authorized(request):
            return JSONResponse({"error": "unauthorized", "message": "the console needs its password or token"},
                                status_code=401, headers={"www-authenticate": REALM})
        return None


def log_request(request: Request, route: str, response: Response, started: float, error: str | None = None) -> None:
    """The access line of one console request: method, route, status, time, client. Never a body,
    an image, a number or a header value."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    fields = {
        "dialect": "console",
        "method": request.method,
        "route": route,
        "status": response.status_code,
        "error": error,
        "latency_ms": round((time.perf_counter() - started) * 1000.0, 1),
        "client": request.client.host if request.client else "",
    }
    access_log.info("%s %s %s", request.method, route, response.status_code, extra={"fields": fields})
