"""Local connections and fan-out.

A frame is encoded once and framed once (the WebSocket header included), then
the same bytes are written to every recipient without awaiting. A recipient
whose unsent bytes pass `client_buffer_bytes` is dropped, never waited on: it
reconnects and starts again from a snapshot. This is websockets' `broadcast()`
design, plus the bound. How bytes leave is the writer's business
(`server/transport.py`: the fast path, or a bounded queue).
"""

import logging
from collections import defaultdict
from typing import Any

from .metrics import STATS
from .transport import Lagging, Writer, ws_text_frame

log = logging.getLogger("leitai.hub")

ROLES = ("audience", "overlay", "console")


class Conn:
    """One socket: who it is, and a non-blocking way to write to it."""

    __slots__ = (
        "__weakref__",
        "banned",
        "closed",
        "device",
        "dhash",
        "first_seen",
        "held",
        "holder",
        "ip",
        "keyed",
        "name",
        "network",
        "parent",
        "resume",
        "role",
        "slug",
        "strikes",
        "valid_seen",
        "venue",
        "writer",
    )

    def __init__(self, writer: Writer, role: str, slug: str, device: str = "", dhash: str = "", ip: str = "") -> None:
        self.writer = writer
        self.role, self.slug = role, slug
        self.device, self.dhash, self.ip = device, dhash, ip
        self.closed = False
        self.strikes = 0  # rate-limited replies in a row
        self.valid_seen = False
        self.banned = False
        self.held = False  # True until the socket's snapshot is sent: no frame goes out before it
        self.holder = dhash or role  # whose budgets and reply cache this socket uses
        self.parent = ""  # the device this one replaced, if the phone said (bans carry over)
        self.network = ""  # the address's network, for per-network budgets
        self.venue = False  # on a declared venue network
        self.first_seen = 0  # when this device first joined the show (ms)
        self.keyed = False  # an overlay with the show's key: one of the studio's screens
        self.name = ""  # a moderator's name (consoles), for "who did it" and who is on which card
        self.resume: tuple[int, str] | None = None  # (seq, epoch) the client last had: it may resume

    def start(self) -> None:
        self.writer.start()

    def send(self, payload: bytes, wire: bytes | None = None) -> bool:
        """Queue one frame; False if the connection is gone or was dropped for lagging."""
        if self.closed or self.held:  # guard: first frame
            return False
        try:
            if self.writer.write(payload, wire if wire is not None else ws_text_frame(payload)):
                return True
        except Lagging:
            self.drop()
            return False
        self.closed = True
        return False

    def drop(self) -> None:
        """Cut a client that fell too far behind; it reconnects to a snapshot."""
        log.info("dropping lagging %s client on %s", self.role, self.slug)
        STATS.dropped += 1
        self.closed = True
        self.writer.abort()

    async def close(self, code: int) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await self.writer.close(code)
        except Exception:  # already gone: nothing to tell it
            pass

    def stop(self) -> None:
        """The socket has ended: stop any writer task."""
        self.closed = True
        self.writer.stop()


class Room:
    """The local sockets of one show, by role (and phones by device)."""

    def __init__(self, phone_groups: int = 1) -> None:
        self.conns: dict[str, set[Conn]] = {role: set() for role in ROLES}
        self.by_device: dict[str, set[Conn]] = defaultdict(set)
        # Phones are split into groups, one group's tally written per tick, so that a
        # phone still gets one every PHONE_TICK_MS but no tick writes to all of them.
        self.phone_groups: list[set[Conn]] = [set() for _ in range(max(1, phone_groups))]
        self._group_of: dict[Conn, int] = {}
        self.screens = 0  # overlays with the show's key

    def add(self, conn: Conn) -> None:
        self.conns[conn.role].add(conn)
        self.screens += conn.keyed
        if conn.role == "audience":
            group = min(range(len(self.phone_groups)), key=lambda g: len(self.phone_groups[g]))
            self.phone_groups[group].add(conn)
            self._group_of[conn] = group
        if conn.dhash:
            self.by_device[conn.dhash].add(conn)

    def remove(self, conn: Conn) -> None:
        if conn in self.conns[conn.role]:
            self.conns[conn.role].discard(conn)
            self.screens -= conn.keyed
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

    def send_group(self, conns: Any, payload: bytes, wire: bytes | None = None) -> int:
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
