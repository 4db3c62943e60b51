"""Local connections and fan-out.

A frame is encoded once and framed once (the WebSocket header included), then
the same bytes are written to every recipient's transport without awaiting.
A recipient whose unsent bytes pass `client_buffer_bytes` is dropped, never
waited on: it reconnects and starts again from a snapshot. This is
websockets' `broadcast()` design, plus the bound.

Where the server's WebSocket protocol does not expose a transport (not uvicorn's
sans-I/O implementation), each connection gets a writer task fed by a queue
bounded in bytes, with the same drop rule.
"""

import asyncio
import logging
import socket
import struct
from collections import defaultdict
from typing import Any

from .metrics import STATS

log = logging.getLogger("leitai.hub")

ROLES = ("audience", "overlay", "console")


def ws_text_frame(payload: bytes) -> bytes:
    """One unmasked, final text frame (server to client)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


class Conn:
    """One socket: who it is, and a non-blocking way to write to it."""

    __slots__ = ("ws", "role", "slug", "device", "dhash", "ip", "limit", "closed",
                 "_proto", "_transport", "_queue", "_queued", "_writer", "buckets",
                 "strikes", "valid_seen", "banned", "__weakref__")

    def __init__(self, ws: Any, role: str, slug: str, limit: int, device: str = "",
                 dhash: str = "", ip: str = "", sndbuf: int = 0) -> None:
        self.ws, self.role, self.slug = ws, role, slug
        self.device, self.dhash, self.ip = device, dhash, ip
        self.limit = limit
        self.closed = False
        self.buckets: dict[str, Any] = {}
        self.strikes = 0
        self.valid_seen = False
        self.banned = False
        proto = getattr(getattr(ws, "_send", None), "__self__", None)
        transport = getattr(proto, "transport", None)
        if type(proto).__name__ == "WebSocketsSansIOProtocol" and transport is not None:
            self._proto, self._transport = proto, transport
            self._queue = None
            sock = transport.get_extra_info("socket")
            if sndbuf and sock is not None:
                # A fixed kernel send buffer (no autotuning up to megabytes) makes the
                # user-space bound below the real measure of how far a client lags.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        else:
            self._proto = self._transport = None
            self._queue: asyncio.Queue | None = asyncio.Queue()
        self._queued = 0
        self._writer: asyncio.Task | None = None
        log.debug("%s socket: %s", role, "fast path" if self._transport else f"queue ({type(proto).__name__})")

    def start(self) -> None:
        if self._queue is not None:
            self._writer = asyncio.create_task(self._drain())

    def send(self, payload: bytes, wire: bytes | None = None) -> bool:
        """Queue one frame; False if the connection is gone or was dropped for lagging."""
        if self.closed:
            return False
        transport = self._transport
        if transport is not None:
            if transport.is_closing() or self._proto.close_sent:
                self.closed = True
                return False
            if transport.get_write_buffer_size() > self.limit:
                self.drop()
                return False
            transport.write(wire if wire is not None else ws_text_frame(payload))
            return True
        if self._queued > self.limit:
            self.drop()
            return False
        self._queued += len(payload)
        self._queue.put_nowait(payload)
        return True

    async def _drain(self) -> None:
        try:
            while True:
                payload = await self._queue.get()
                self._queued -= len(payload)
                await self.ws.send_text(payload.decode())
        except Exception:
            self.closed = True

    def drop(self) -> None:
        """Cut a client that fell too far behind; it reconnects to a snapshot."""
        log.info("dropping lagging %s client on %s", self.role, self.slug)
        STATS.dropped += 1
        self.closed = True
        if self._transport is not None:
            self._transport.abort()
        elif self._writer is not None:
            self._writer.cancel()

    async def close(self, code: int) -> None:
        if self.closed:
            return
        self.closed = True
        if self._writer is not None:
            self._writer.cancel()
        try:
            await self.ws.close(code)
        except Exception:
            pass

    def stop(self) -> None:
        self.closed = True
        if self._writer is not None:
            self._writer.cancel()


class Room:
    """The local sockets of one show, by role (and phones by device)."""

    def __init__(self, phone_groups: int = 1) -> None:
        self.conns: dict[str, set[Conn]] = {role: set() for role in ROLES}
        self.by_device: dict[str, set[Conn]] = defaultdict(set)
        # Phones are split into groups, one group's tally written per tick, so that a
        # phone still gets one every PHONE_TICK_MS but no tick writes to all of them.
        self.phone_groups: list[set[Conn]] = [set() for _ in range(max(1, phone_groups))]
        self._group_of: dict[Conn, int] = {}

    def add(self, conn: Conn) -> None:
        self.conns[conn.role].add(conn)
        if conn.role == "audience":
            group = min(range(len(self.phone_groups)), key=lambda g: len(self.phone_groups[g]))
            self.phone_groups[group].add(conn)
            self._group_of[conn] = group
        if conn.dhash:
            self.by_device[conn.dhash].add(conn)

    def remove(self, conn: Conn) -> None:
        self.conns[conn.role].discard(conn)
        group = self._group_of.pop(conn, None)
        if group is not None:
            self.phone_groups[group].discard(conn)
        if conn.dhash:
            mates = self.by_device.get(conn.dhash)
            if mates is not None:
                mates.discard(conn)
                if not mates:
                    del self.by_device[conn.dhash]

    def count(self, role: str) -> int:
        return len(self.conns[role])

    def __len__(self) -> int:
        return sum(len(c) for c in self.conns.values())

    def send_group(self, conns: set[Conn], payload: bytes, wire: bytes | None = None) -> int:
        """Write one payload to a set of sockets, framed once; return how many took it."""
        wire = wire or ws_text_frame(payload)
        sent = 0
        # Nothing here adds or removes sockets synchronously (a drop's
        # connection_lost runs later), so the set is iterated as it is.
        for conn in conns:
            sent += conn.send(payload, wire)
        STATS.frames_out += sent
        return sent

    def broadcast(self, roles: tuple[str, ...], payload: bytes) -> int:
        """Write one payload to every socket of the roles; return how many took it."""
        wire = ws_text_frame(payload)
        return sum(self.send_group(self.conns[role], payload, wire) for role in roles)

    def all(self) -> list[Conn]:
        return [c for conns in self.conns.values() for c in conns]
