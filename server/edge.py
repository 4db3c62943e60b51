"""Connection hygiene in the server itself (docs/reliability.md, "The edge").

uvicorn's HTTP protocols keep a connection that never finishes its request
headers for ever (its keep-alive timeout starts only after a response), so a
slowloris client holding thousands of half-sent requests exhausts the
process's file descriptors. Two small subclasses of uvicorn's protocols, given
to `uvicorn.run(http=..., ws=...)` by `python -m server`, add:

- a header deadline: a connection that has not sent complete request headers
  `HEADER_TIMEOUT_S` after it opened (or after its next request began) is
  closed;
- a cap on open connections per peer address (HTTP and WebSocket alike,
  counted when the transport opens and when it is lost, across the upgrade):
  past `CONNECTIONS_PER_IP` a new connection is closed at once. The proxies in
  `FORWARDED_ALLOW_IPS` (nginx, which carries everyone and caps per client
  itself: docs/deploy.md) are not capped.

The WebSocket subclass changes nothing else, so the fast write path
(server/transport.py) sees the same protocol object it expects.
"""

import asyncio
import logging

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from .settings import Settings
from .transport import HttpProtocol

log = logging.getLogger("leitai.edge")


class Limits:
    """This process's connection limits and counts (one per process)."""

    def __init__(self) -> None:
        self.header_timeout_s = 10.0
        self.per_ip = 0  # 0: no cap
        self.exempt: frozenset[str] = frozenset()
        self.exempt_all = False
        self.open: dict[str, int] = {}
        self.refused = 0  # connections closed at once: over the cap
        self.timed_out = 0  # connections closed: headers not complete in time

    def configure(self, settings: Settings) -> None:
        self.header_timeout_s = settings.header_timeout_s
        self.per_ip = settings.connections_per_ip
        proxies = {p.strip() for p in settings.forwarded_allow_ips.split(",") if p.strip()}
        self.exempt_all = "*" in proxies
        self.exempt = frozenset(proxies)

    def take(self, ip: str) -> bool:
        """Count one more connection from `ip`; False if that is past the cap."""
        n = self.open.get(ip, 0) + 1
        self.open[ip] = n
        if self.per_ip and n > self.per_ip:  # guard: connections per ip
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning("connections past CONNECTIONS_PER_IP=%d closed: %d", self.per_ip, self.refused)
            return False
        return True

    def release(self, ip: str) -> None:
        n = self.open.get(ip, 0) - 1
        if n > 0:
            self.open[ip] = n
        else:
            self.open.pop(ip, None)

    def counted(self, ip: str) -> bool:
        return bool(ip) and not self.exempt_all and ip not in self.exempt


LIMITS = Limits()


def _peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, (tuple, list)) and peer:
        ip = str(peer[0])
        return ip[7:] if ip.startswith("::ffff:") else ip  # an IPv4 client on a dual-stack socket
    return ""


class EdgeHttpProtocol(HttpProtocol):  # drops its parser at the upgrade (transport.py)
    """uvicorn's httptools protocol with a header deadline and the per-address cap."""

    _edge_ip = ""
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ip = _peer(transport)
        if LIMITS.counted(ip):
            self._edge_ip = ip
            if not LIMITS.take(ip):
                transport.close()
                return
        self._start_header_timer()

    def _start_header_timer(self) -> None:
        if self._header_timer is None and LIMITS.header_timeout_s > 0:
            self._header_timer = self.loop.call_later(LIMITS.header_timeout_s, self._headers_late)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():  # guard: header timeout
            LIMITS.timed_out += 1
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_header_timer()  # the next request on a kept-alive connection

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        super().on_headers_complete()

    def handle_websocket_upgrade(self) -> None:
        self._stop_header_timer()
        super().handle_websocket_upgrade()
        # The transport now belongs to the socket's protocol, which gives the count back.
        proto = self.transport.get_protocol()
        if isinstance(proto, EdgeWebSocketProtocol):
            proto._edge_ip, self._edge_ip = self._edge_ip, ""

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        if self._edge_ip:
            LIMITS.release(self._edge_ip)
            self._edge_ip = ""
        super().connection_lost(exc)


class EdgeWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol that gives its connection's count back."""

    _edge_ip = ""

    def connection_lost(self, exc: Exception | None) -> None:
        if self._edge_ip:
            LIMITS.release(self._edge_ip)
            self._edge_ip = ""
        super().connection_lost(exc)
