"""Who may do what: cookies (device, host session), the Origin rule, and the
security headers every HTTP response carries."""

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, Signer, TimestampSigner
from starlette.requests import HTTPConnection

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


@dataclass(frozen=True, slots=True)
class HostSession:
    """A host session cookie that is signed and not expired (whether it was revoked
    is the store's word: web/sessions.py)."""

    sid: str
    generation: int  # the "sign out everywhere" count it was made under
    issued: float  # epoch seconds
    left: float  # seconds until it expires


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    minted: int  # ms; 0 for cookies made before devices carried their time
    parent: str  # the hash of the device this one replaced, or ""


class Auth:
    def __init__(
        self,
        secret: str,
        host_token: str,
        session_max_age_s: int,
        allowed_origins: tuple[str, ...],
        public_url: str = "",
        allowed_hosts: tuple[str, ...] = (),
    ) -> None:
        self.device_signer = Signer(secret, salt="leitai.device")
        self.memory_signer = Signer(secret, salt="leitai.device-memory")
        self.challenge_secret = hmac.new(secret.encode(), b"leitai.altcha", hashlib.sha256).hexdigest()
        self.session_signer = TimestampSigner(secret, salt="leitai.session")
        self.host_token = host_token
        self.session_max_age_s = session_max_age_s
        self.allowed_origins = frozenset(allowed_origins)
        self.public_origin = origin_of(public_url) if public_url else ""
        self.allowed_hosts = frozenset(h.strip().lower() for h in allowed_hosts if h.strip())

    # -- devices -----------------------------------------------------------------
    #
    # A device cookie is the signed "id.minted_ms.parent": its id, when it was made,
    # and the short hash of the device it replaced, if the phone said so (so that a
    # ban reaches the new device). The page also keeps a signed "memory" of the
    # device's hash in localStorage, which it shows when it needs a new device.

    def new_device(self, parent: str = "") -> tuple[Device, str]:
        """A fresh device and its signed cookie value."""
        device = Device(secrets.token_urlsafe(16), int(time.time() * 1000), parent)
        return device, self.device_signer.sign(f"{device.id}.{device.minted}.{parent}").decode()

    def device(self, cookie: str | None) -> Device | None:
        if not cookie:
            return None
        try:
            value = self.device_signer.unsign(cookie).decode()
        except BadSignature:
            return None
        parts = value.split(".")
        if len(parts) == 3 and parts[1].isdigit():
            return Device(parts[0], int(parts[1]), parts[2])
        return Device(value, 0, "")  # made before devices carried their time

    def memory(self, dhash: str) -> str:
        """What the page keeps of a device (in localStorage): its hash, signed."""
        return self.memory_signer.sign(dhash).decode()

    def remembered(self, token: str) -> str:
        """The device hash a memory token names, or ""."""
        try:
            return self.memory_signer.unsign(token).decode() if token else ""
        except BadSignature:
            return ""

    # -- host sessions -------------------------------------------------------------

    def check_token(self, token: str) -> bool:
        return bool(self.host_token) and hmac.compare_digest(token.encode(), self.host_token.encode())

    def new_session(self, generation: int) -> str:
        """A session cookie: "host.{sid}.g{generation}", signed with its time. Each
        session is its own holder (budgets, undo) and can be revoked alone."""
        return self.session_signer.sign(f"host.{secrets.token_urlsafe(9)}.g{generation}").decode()

    def session(self, cookie: str | None) -> HostSession | None:
        """The session a cookie names, if signed by us and not expired (revocation is
        checked by web/sessions.py)."""
        if not cookie:
            return None
        try:
            value, ts = self.session_signer.unsign(cookie, return_timestamp=True)
        except BadSignature:
            return None
        issued = ts.timestamp()
        left = self.session_max_age_s - (time.time() - issued)
        if left <= 0:
            return None
        parts = value.decode().split(".")
        generation = int(parts[2][1:]) if len(parts) == 3 and parts[2][1:].isdigit() else 0
        return HostSession(parts[1] if len(parts) > 1 else value.decode(), generation, issued, left)

    # -- origins -----------------------------------------------------------------
    #
    # Never from the request's `Host` header, which the client chooses (a DNS-rebinding
    # page sends `Host: rebind.evil.example` with a matching Origin). Ours are:
    # PUBLIC_URL's origin; the address the connection really reached (the local socket,
    # for a server used without PUBLIC_URL, e.g. on a LAN; "localhost" too when that is
    # loopback); hosts in ALLOWED_HOSTS ("name": any port, "name:port": that one, either
    # scheme); and the exact origins in ALLOWED_ORIGINS.

    def origin_ok(self, conn: HTTPConnection) -> bool:
        """The Origin header, if a browser sent one, is ours or allowed."""
        headers = conn.headers
        origin = headers.get("origin")
        if origin is None:
            site = headers.get("sec-fetch-site")
            return site in (None, "same-origin", "none")
        return self.own_origin(origin, conn.scope)  # guard: origin

    def own_origin(self, origin: str, scope: Mapping[str, Any]) -> bool:
        if origin in self.allowed_origins or origin == self.public_origin:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
            return False
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return False
        host = parts.hostname.lower()
        if host in self.allowed_hosts or f"{host}:{port}" in self.allowed_hosts:
            return True
        local = scope.get("server")
        if not local or local[1] != port:
            return False
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        if parts.scheme != scheme:
            return False
        here = str(local[0]).lower()  # guard: origin not from host
        if host.strip("[]") == here:
            return True
        return host == "localhost" and _loopback(here)


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def origin_of(url: str) -> str:
    """ "scheme://host[:port]" of a URL ("" if it has none)."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""
