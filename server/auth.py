"""Cookies (device, host session) and the Origin rule."""

import hmac
import secrets
import time

from itsdangerous import BadSignature, Signer, TimestampSigner

DEVICE_COOKIE = "lt_device"
SESSION_COOKIE = "lt_session"


class Auth:
    def __init__(self, secret: str, host_token: str, session_max_age_s: int,
                 allowed_origins: tuple[str, ...]) -> None:
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
        return origin in own or origin in self.allowed_origins
