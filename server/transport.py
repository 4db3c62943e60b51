"""Writing frames to a socket: the fast path and the fallback, behind one adapter.

The fast path writes pre-framed bytes (header included) straight to the asyncio
transport of uvicorn's sans-I/O WebSocket protocol, which it reaches through
Starlette's `WebSocket._send` (a bound method of that protocol). Both are
internal details of those libraries, so `FastPath.check()` verifies them once
at start-up against real objects, logs which path is in use at `info`, and
`/metrics` exports the answer (`leitai_fast_path`). A connection that cannot
take the fast path gets a writer task fed by a queue bounded in bytes, and is
counted (`leitai_socket_paths{path="queue"}`) and logged at `warning` once:
an upgrade never loses the fast path silently.
"""

import asyncio
import logging
import socket
import struct
from typing import Any, Protocol

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("leitai.transport")


def ws_text_frame(payload: bytes) -> bytes:
    """One unmasked, final text frame (server to client)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


class Writer(Protocol):
    """How a connection's frames leave the process."""

    def write(self, payload: bytes, wire: bytes) -> bool:
        """Queue one frame without waiting; False if gone or past `limit` (then dropped)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def abort(self) -> None: ...

    async def close(self, code: int) -> None: ...


class TransportWriter:
    """The fast path: the same framed bytes go to every transport, no task, no await."""

    __slots__ = ("limit", "proto", "transport", "ws")

    def __init__(self, ws: Any, proto: Any, limit: int, sndbuf: int) -> None:
        self.ws, self.proto, self.transport, self.limit = ws, proto, proto.transport, limit
        sock = self.transport.get_extra_info("socket")
        if sndbuf and sock is not None:
            # A fixed kernel send buffer (no autotuning up to megabytes) makes the
            # user-space bound the real measure of how far a client lags.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)

    def write(self, payload: bytes, wire: bytes) -> bool:
        transport = self.transport
        if transport.is_closing() or self.proto.close_sent:
            return False
        if transport.get_write_buffer_size() > self.limit:  # guard: slow drop
            raise Lagging
        transport.write(wire)
        return True

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def abort(self) -> None:
        self.transport.abort()

    async def close(self, code: int) -> None:
        await self.ws.close(code)


class QueueWriter:
    """The fallback: a writer task per connection, its queue bounded in bytes."""

    def __init__(self, ws: Any, limit: int) -> None:
        self.ws, self.limit = ws, limit
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.queued = 0
        self.task: asyncio.Task[Any] | None = None
        self.dead = False

    def write(self, payload: bytes, wire: bytes) -> bool:
        if self.dead:
            return False
        if self.queued > self.limit:
            raise Lagging
        self.queued += len(payload)
        self.queue.put_nowait(payload)
        return True

    def start(self) -> None:
        self.task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while True:
                payload = await self.queue.get()
                self.queued -= len(payload)
                await self.ws.send_text(payload.decode())
        except Exception:  # the socket is gone
            self.dead = True

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def abort(self) -> None:
        self.stop()

    async def close(self, code: int) -> None:
        self.stop()
        await self.ws.close(code)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, letting go of its parser once a socket is upgraded.

    The parser holds the protocol's bound callbacks and the protocol holds the
    parser: a reference cycle. After the upgrade nothing uses either, yet only a
    full garbage collection frees them (about 28 objects, several KiB, per socket),
    and with GC_THRESHOLD0 high and thousands of long-lived sockets, full
    collections are rare: every phone that came and went stayed in memory until
    one. Dropping the parser at the upgrade ends the cycle, so reference counting
    frees the protocol at once (docs/reliability.md, "Four hours on air")."""

    def handle_websocket_upgrade(self) -> None:
        super().handle_websocket_upgrade()
        self.parser = None  # type: ignore[assignment]  # guard: release the upgraded protocol


class Lagging(Exception):
    """The client is too far behind: drop it."""


class FastPath:
    """Which write path this process uses, checked once at start-up."""

    def __init__(self) -> None:
        self.available = False
        self.reason = "not checked"
        self.paths = {"fast": 0, "queue": 0}
        self._proto_class: type | None = None
        self._warned = False

    @property
    def in_use(self) -> bool:
        """True while every connection so far took the fast path."""
        return self.available and self.paths["queue"] == 0

    def check(self) -> "FastPath":
        try:
            self._proto_class = _check_libraries()
            self.available, self.reason = True, "uvicorn sans-I/O protocol, Starlette WebSocket._send"
            log.info("socket write path: fast (frames written once to each transport)")
        except Exception as exc:  # any surprise means: not available
            self.available, self.reason = False, str(exc)
            log.warning(
                "socket write path: queue per connection, NOT the fast path (%s); "
                "run with uvicorn's ws='websockets-sansio' and the pinned versions",
                exc,
            )
        return self

    def writer(self, ws: Any, limit: int, sndbuf: int) -> Writer:
        proto = getattr(getattr(ws, "_send", None), "__self__", None)
        fast = self._proto_class is not None and isinstance(proto, self._proto_class)
        if fast and getattr(proto, "transport", None) is not None:  # guard: fast path
            self.paths["fast"] += 1
            return TransportWriter(ws, proto, limit, sndbuf)
        self.paths["queue"] += 1
        if not self._warned:
            self._warned = True
            log.warning("a socket took the slow write path (protocol %s)", type(proto).__name__)
        return QueueWriter(ws, limit)


def _check_libraries() -> type:
    """The fast path's assumptions, checked against real objects of the installed
    uvicorn and Starlette; returns uvicorn's protocol class. (Which protocol the
    server really runs is seen per connection: uvicorn must run with
    ws="websockets-sansio", as `python -m server` does.)"""
    import uvicorn
    from starlette.websockets import WebSocket
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from uvicorn.server import ServerState

    config = uvicorn.Config(app="server.app:create_app", ws="websockets-sansio", log_config=None)  # not loaded
    proto = WebSocketsSansIOProtocol(config, ServerState(), {})
    for attr in ("transport", "close_sent"):
        if not hasattr(proto, attr):
            raise RuntimeError(f"uvicorn {uvicorn.__version__}: the protocol has no {attr!r}")

    async def receive() -> dict[str, Any]:
        return {}

    ws = WebSocket({"type": "websocket", "path": "/", "headers": []}, receive, proto.send)  # type: ignore[arg-type]
    if getattr(getattr(ws, "_send", None), "__self__", None) is not proto:
        raise RuntimeError("starlette WebSocket no longer keeps the server's send as _send")
    return WebSocketsSansIOProtocol
