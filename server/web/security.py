"""Who may do what: cookies (device, host session), the Origin rule, and the
security headers every HTTP response carries."""

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Any

from itsdangerous import BadSignature, Signer, TimestampSigner

from ..domain.ratelimit import TokenBucket

DEVICE_COOKIE = "lt_device"
SESSION_COOKIE = "lt_session"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; font-src 'self' data:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),  # guard: csp
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """CSP and friends on every HTTP response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def client_ip(scope: Mapping[str, Any]) -> str:
    client = scope.get("client") or ("", 0)
    return str(client[0])


def holder_of_session(cookie: str) -> str:
    """A stable, short name for one host session (its budgets and reply cache)."""
    return "host:" + hashlib.sha256(cookie.encode()).hexdigest()[:12]


class Auth:
    def __init__(self, secret: str, host_token: str, session_max_age_s: int, allowed_origins: tuple[str, ...]) -> None:
        self.device_signer = Signer(secret, salt="leitai.device")
        self.session_signer = TimestampSigner(secret, salt="leitai.session")
        self.host_token = host_token
        self.session_max_age_s = session_max_age_s
        self.allowed_origins = frozenset(allowed_origins)

    # -- devices -----------------------------------------------------------------

    def new_device(self) -> tuple[str, str]:
        """A fresh device id and its signed cookie value."""
        device = secrets.token_urlsafe(16)
        return device, self.device_signer.sign(device).decode()

    def device(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            return self.device_signer.unsign(cookie).decode()
        except BadSignature:
            return None

    # -- host sessions -------------------------------------------------------------

    def check_token(self, token: str) -> bool:
        return bool(self.host_token) and hmac.compare_digest(token.encode(), self.host_token.encode())

    def new_session(self) -> str:
        return self.session_signer.sign("host").decode()

    def session_age(self, cookie: str | None) -> float | None:
        """Seconds left in a valid session, or None."""
        if not cookie:
            return None
        try:
            _, ts = self.session_signer.unsign(cookie, return_timestamp=True)
        except BadSignature:
            return None
        left = self.session_max_age_s - (time.time() - ts.timestamp())
        return left if left > 0 else None

    # -- origins -----------------------------------------------------------------

    def origin_ok(self, headers, scheme: str) -> bool:
        """The Origin header, if a browser sent one, is ours or allowed (exact match)."""
        origin = headers.get("origin")
        if origin is None:
            site = headers.get("sec-fetch-site")
            return site in (None, "same-origin", "none")
        host = headers.get("host", "")
        own = {f"{scheme}://{host}"}
        return origin in own or origin in self.allowed_origins  # guard: origin


class NewDevices:
    """New device cookies per IP per minute: generous, so that one carrier NAT is
    not one phone; a phone that already has its cookie is never counted."""

    def __init__(self, per_min: int) -> None:
        self.per_min = per_min
        self.buckets: dict[str, TokenBucket] = {}

    def may_issue(self, ip: str) -> bool:
        if self.per_min <= 0:
            return True
        if len(self.buckets) > 100_000:
            self.buckets.clear()
        bucket = self.buckets.setdefault(ip, TokenBucket(self.per_min / 60, self.per_min))
        return bool(bucket.take(time.monotonic()) == 0)
