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

The WebSocket subclass also holds less per idle socket (issue 17, ≤ 18 KiB per
idle phone; docs/performance.md): uvicorn makes an `asyncio.Queue` (four deques
with its `Event`s) and an `asyncio.Event` (a fifth) per socket, 760 B each while
empty. `LeanQueue` and `LeanEvent` hold a list and a future only while something
waits. They implement only what uvicorn calls, so `LEAN.check()` verifies at
start-up, against the installed uvicorn, that its protocol still makes those two
objects and calls nothing else on them; if not, it logs a warning and every
socket keeps uvicorn's own (`/metrics`: `leitai_lean_sockets`). It is still
uvicorn's protocol class, so the fast write path (server/transport.py) sees the
protocol object it expects.
"""

import asyncio
import inspect
import logging
import re
from typing import Any

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


class LeanQueue:
    """A single-consumer queue: a list only while items wait, a future only while the reader does."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = [item]
        else:
            self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        items = self._items
        item = items.pop(0)
        if not items:
            self._items = None
        return item

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0


class LeanEvent:
    """`asyncio.Event` as uvicorn uses it, its waiter list made only while someone waits."""

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list[asyncio.Future[bool]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        self._value = True
        waiters, self._waiters = self._waiters, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_result(True)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(fut)
        return await fut


# What uvicorn's protocol may call on them: what LeanQueue and LeanEvent implement.
_USES = {"queue": {"put_nowait", "get", "empty", "qsize"}, "writable": {"set", "clear", "is_set", "wait"}}


class Lean:
    """Whether this process's sockets get LeanQueue and LeanEvent, checked once at start-up."""

    def __init__(self) -> None:
        self.on = False
        self.reason = "not checked"

    def check(self) -> "Lean":
        try:
            _check_uvicorn()
            self.on, self.reason = True, "uvicorn sans-I/O protocol: queue and writable replaced"
            log.info("idle sockets: lean (a single-consumer incoming queue, a lean writable event)")
        except Exception as exc:  # any surprise means: keep uvicorn's own
            self.on, self.reason = False, str(exc)
            log.warning("idle sockets: uvicorn's own asyncio.Queue and Event, NOT the lean ones (%s)", exc)
        return self


def _check_uvicorn() -> None:
    """The lean objects' assumptions, checked against the installed uvicorn: its
    protocol makes an `asyncio.Queue` `queue` and a set `asyncio.Event` `writable`,
    and calls on them only what LeanQueue and LeanEvent implement."""
    import uvicorn
    from uvicorn.server import ServerState

    async def app(scope: Any, receive: Any, send: Any) -> None:  # a protocol loads its config's app
        pass

    config = uvicorn.Config(app=app, ws="websockets-sansio", log_config=None)
    proto = WebSocketsSansIOProtocol(config, ServerState(), {})
    if type(getattr(proto, "queue", None)) is not asyncio.Queue:
        raise RuntimeError(f"uvicorn {uvicorn.__version__}: the protocol's queue is not an asyncio.Queue")
    writable = getattr(proto, "writable", None)
    if type(writable) is not asyncio.Event or not writable.is_set():
        raise RuntimeError(f"uvicorn {uvicorn.__version__}: the protocol's writable is not a set asyncio.Event")
    source = inspect.getsource(WebSocketsSansIOProtocol)
    for name, allowed in _USES.items():
        used = set(re.findall(rf"self\.{name}\.(\w+)", source))
        if not used or used - allowed:
            raise RuntimeError(f"uvicorn {uvicorn.__version__}: the protocol calls {sorted(used)} on its {name}")
        if re.search(rf"self\.{name}\b(?!\.\w+\()(?!\s*[:=][^=])", source):
            raise RuntimeError(f"uvicorn {uvicorn.__version__}: the protocol uses its {name} other than by a call")


LEAN = Lean()


class EdgeWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol that gives its connection's count back and,
    if `LEAN.check()` passed, holds LeanQueue and LeanEvent instead of asyncio's."""

    _edge_ip = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if LEAN.on:
            self.queue = LeanQueue()  # type: ignore[assignment]
            writable = LeanEvent()
            writable.set()
            self.writable = writable  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._edge_ip:
            LIMITS.release(self._edge_ip)
            self._edge_ip = ""
        super().connection_lost(exc)
