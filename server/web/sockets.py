"""The socket edge: one class owns admission, per-IP counts, the read loop, and
turning replies into bytes.

Admission checks, in order: the Origin, the show, the credential (device
cookie for phones, session for consoles), then the caps (sockets per device,
per IP). The read loop reads the server's own `receive` (no per-frame
Starlette state checks), caps frame sizes, parses, hands valid messages to the
node and writes the reply it returns. Flooding is counted by reply code: a
socket whose replies are `rate_limited` too many times in a row is closed.
"""

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.websockets import WebSocket

from .. import protocol
from ..domain.ratelimit import Buckets
from ..hub import Conn
from ..metrics import STATS
from ..node import Runtime, StoreUnavailable, device_hash
from ..protocol import ProtocolError, Reply
from .context import Leitai
from .security import DEVICE_COOKIE, SESSION_COOKIE, HostSession, client_ip, holder_of_session

log = logging.getLogger("leitai.sockets")

# What Starlette's WebSocket caches once admission has read it (URL, headers, cookies, query).
_ADMISSION_CACHES = ("_url", "_base_url", "_headers", "_cookies", "_query_params")


def forget_admission(ws: WebSocket) -> None:
    """Drop what admission read and nothing reads afterwards: Starlette's caches and the
    scope's header list, kept otherwise for the socket's whole life (~1.6 KiB per idle
    phone: docs/performance.md, "What reaches ≤ 18 KiB")."""
    for name in _ADMISSION_CACHES:
        ws.__dict__.pop(name, None)
    ws.scope["headers"] = []


Receive = Callable[[], Awaitable[dict]]


class PerAddress:
    """Open sockets per address."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def __getitem__(self, ip: str) -> int:
        return self.counts.get(ip, 0)

    def add(self, ip: str) -> None:
        self.counts[ip] = self.counts.get(ip, 0) + 1

    def remove(self, ip: str) -> None:
        left = self.counts.get(ip, 1) - 1
        if left:
            self.counts[ip] = left
        else:
            self.counts.pop(ip, None)


class Refused(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class SocketServer:
    """The ASGI entry for every `/ws/{role}/{show}` socket."""

    def __init__(self, lt: Leitai) -> None:
        self.lt = lt
        self.settings = lt.settings
        self.node = lt.node
        self.by_ip = PerAddress()  # every socket
        self.unkeyed_by_ip = PerAddress()  # overlays without the show's key
        self.frames = Buckets()  # every client frame, per device (or socket), in this process
        self.failures_logged: set[str] = set()  # kinds of unforeseen errors already logged
        self.consoles: dict[Conn, HostSession] = {}  # open consoles and the session each came with
        lt.sessions.listeners.append(self._sessions_changed)

    def _sessions_changed(self) -> None:
        """Some host sessions were ended: close the consoles that came with one (4401)."""
        for conn, session in list(self.consoles.items()):
            if not self.lt.sessions.valid(session):
                self.consoles.pop(conn, None)
                self.node.tasks.spawn(conn.close(4401), "session-ended")

    async def __call__(self, scope: dict, receive: Receive, send: Any) -> None:
        parts = scope["path"].split("/")
        ws = WebSocket(scope, receive, send)
        if len(parts) != 4 or parts[1] != "ws" or parts[2] not in protocol.ROLES:
            return await self._refuse(ws, 4404)
        role, slug = parts[2], parts[3]
        try:
            rt, conn, session = await self._admit(ws, role, slug)
        except Refused as exc:
            return await self._refuse(ws, exc.code)
        except Exception as exc:  # unforeseen, as in the read loop: refused 1011, logged once
            self._failed(exc)
            return await self._refuse(ws, 1011)
        await self._serve(ws, receive, rt, conn, session)

    @staticmethod
    async def _refuse(ws: WebSocket, code: int) -> None:
        """Closed before accept is sent as accept-then-close, so browsers see the code."""
        await ws.accept()
        await ws.close(code)

    async def _admit(self, ws: WebSocket, role: str, slug: str) -> tuple[Runtime, Conn, HostSession | None]:
        lt, settings = self.lt, self.settings
        if not lt.auth.origin_ok(ws):
            raise Refused(4403)
        try:
            rt = await self.node.runtime(slug)
        except StoreUnavailable:
            raise Refused(1013) from None  # try again later
        if rt is None or lt.hidden(ws, rt.state, ws.query_params.get("key", "")):
            raise Refused(4404)  # a draft is, to the public, an unknown show
        ip = client_ip(ws.scope)
        device = dhash = holder = parent = ""
        session = None
        keyed = False
        if role == "audience":
            found = lt.auth.device(ws.cookies.get(DEVICE_COOKIE))
            if found is None:
                raise Refused(4401)
            device, parent = found.id, found.parent
            dhash = holder = device_hash(device)
            try:
                wait = await self.node.connect_wait(slug, dhash)  # guard: reconnect loop
            except StoreUnavailable:
                raise Refused(1013) from None
            if wait:
                raise Refused(1013)
            mates = rt.room.by_device.get(dhash)
            if settings.sockets_per_device and mates and len(mates) >= settings.sockets_per_device:
                raise Refused(1008)
        elif role == "console":
            cookie = ws.cookies.get(SESSION_COOKIE) or ""
            session = lt.auth.session(cookie)
            if session is None or not lt.sessions.valid(session):
                raise Refused(4401)
            holder = holder_of_session(cookie)
        else:  # an overlay: one of the studio's screens if its address carries the show's key
            key = ws.query_params.get("key", "")
            keyed = bool(key) and hmac.compare_digest(key, rt.state.overlay_key)
            # guard: unkeyed overlays
            if not keyed and settings.overlays_per_ip and self.unkeyed_by_ip[ip] >= settings.overlays_per_ip:
                raise Refused(1008)
        if settings.sockets_per_ip and self.by_ip[ip] >= settings.sockets_per_ip:  # guard: ip cap
            raise Refused(1008)
        writer = lt.fast_path.writer(ws, settings.client_buffer_bytes, settings.socket_sndbuf)
        conn = Conn(writer, role, slug, device, dhash, ip)
        conn.holder = holder or f"socket:{id(conn)}"
        conn.parent = parent
        conn.keyed = keyed
        since, epoch = ws.query_params.get("since", ""), ws.query_params.get("epoch", "")
        if since.isdigit() and len(since) < 16 and 0 < len(epoch) <= 32:  # a client that comes back
            conn.resume = (int(since), epoch)
        forget_admission(ws)
        return rt, conn, session

    async def _serve(
        self, ws: WebSocket, receive: Receive, rt: Runtime, conn: Conn, session: HostSession | None
    ) -> None:
        ip = conn.ip
        unkeyed = conn.role == "overlay" and not conn.keyed
        self.by_ip.add(ip)
        if unkeyed:
            self.unkeyed_by_ip.add(ip)
        expiry = None
        try:
            await ws.accept()
            if session is not None:  # guard: session expiry
                self.consoles[conn] = session
                self._sessions_changed()  # ended while it was being admitted
                expiry = asyncio.get_running_loop().call_later(
                    session.left, lambda: self.node.tasks.spawn(conn.close(4401), "session-expired")
                )
            await self.node.join(rt, conn)
            await self._read(receive, rt, conn)
        except Exception as exc:  # guard: last resort
            # a bug or an unforeseen store reply: this socket ends (1011), the server serves on
            self._failed(exc)
            await conn.close(1011)
        finally:
            self.node.leave(rt, conn)
            if expiry is not None:
                expiry.cancel()
            self.consoles.pop(conn, None)
            self.by_ip.remove(ip)
            if unkeyed:
                self.unkeyed_by_ip.remove(ip)

    def _failed(self, exc: Exception) -> None:
        """Log an unforeseen error in a socket handler once per kind (a failure that hits
        every socket must not flood the log); count every one."""
        STATS.socket_failures += 1
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        if kind not in self.failures_logged:
            self.failures_logged.add(kind)
            log.error("a socket handler failed; the socket is closed with 1011", exc_info=exc)

    async def _read(self, receive: Receive, rt: Runtime, conn: Conn) -> None:
        """The read loop: frames in, replies out, until the socket ends."""
        max_bytes = self.settings.max_frame_bytes
        frames_in = STATS.frames_in
        loop = asyncio.get_running_loop()
        timeout = self.settings.first_message_timeout_s if conn.role != "overlay" else 0
        deadline = loop.time() + timeout
        while True:
            if timeout and not conn.valid_seen:  # guard: first msg
                # phones and consoles say something valid (at least "hello") soon after
                # connecting; a socket that only holds a slot is closed
                try:
                    message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
                except TimeoutError:
                    await conn.close(1008)
                    return
            else:
                message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            frames_in[conn.role] += 1
            wait = self._frame_wait(conn)  # guard: every frame counts
            if wait:
                refused = Reply(
                    protocol.frame_id(message.get("text")),
                    "rate_limited",
                    "too many frames; slow down",
                    retry_ms=int(wait * 1000) + 1,
                )
                if not await self._answer(conn, refused, edge=True):
                    return
                continue
            text = message.get("text")
            if text is None:
                if len(message.get("bytes") or b"") > max_bytes:
                    await conn.close(1009)
                    return
                await self._answer(conn, Reply(None, "invalid", "binary frames are not accepted"), edge=True)
                continue
            # guard: app frame cap
            if len(text) > max_bytes or (len(text) * 3 > max_bytes and len(text.encode()) > max_bytes):
                await conn.close(1009)
                return
            try:
                msg = protocol.parse(text, conn.role)
            except ProtocolError as exc:
                await self._answer(conn, exc.reply(), edge=True)
                continue
            conn.valid_seen = True
            reply = await self.node.handle(rt, conn, msg)
            if reply is None:
                conn.strikes = 0
            elif not await self._answer(conn, reply):
                return

    def _frame_wait(self, conn: Conn) -> float:
        """Every client frame, answered or not, takes a token from its device's (or its
        socket's) frame budget in this process: 0 if there was one."""
        s = self.settings
        return self.frames.take(conn.holder, "frame", s.frame_rate, s.frame_burst, time.monotonic())

    async def _answer(self, conn: Conn, reply: Reply, edge: bool = False) -> bool:
        """Send a reply (errors made at the edge are counted here; the node counts its
        own); count `rate_limited` strikes in a row. False: the socket was closed."""
        if edge:
            STATS.errors[reply.code or ""] += 1
        conn.send(reply.encode())
        if reply.code != "rate_limited":
            conn.strikes = 0
            return True
        conn.strikes += 1
        if conn.strikes > self.settings.flood_strikes:  # guard: flood close
            await conn.close(1008)  # sustained flooding
            return False
        return True
