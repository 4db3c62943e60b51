"""A minimal WebSocket client and HTTP helpers, cheap enough to hold 10,000 sockets
in one process.

Only what the benchmark needs: the HTTP/1.1 upgrade, unfragmented frames, the
client mask (RFC 6455 requires one; the key is random per process and every
frame a phone sends is pre-masked once), ping -> pong, close. No per-message
deflate (none is offered, so the server never enables it).
"""

import asyncio
import base64
import os
import re
import struct

OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


def mask_bytes(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if not n:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def client_frame(payload: bytes, key: bytes, opcode: int = OP_TEXT) -> bytes:
    """One final, masked client frame."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0xFE, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0xFF, n)
    return head + key + mask_bytes(payload, key)


def upgrade_request(host: str, port: int, path: str, cookie: str = "") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class WSClient(asyncio.Protocol):
    """One client socket. Subclasses override `on_open`, `on_text`, `on_lost`."""

    __slots__ = ("buf", "close_code", "closed", "key", "open", "request", "status", "transport")

    def __init__(self, request: bytes, key: bytes) -> None:
        self.transport: asyncio.Transport | None = None
        self.key = key
        self.request = request
        self.buf = b""
        self.open = False
        self.closed = False
        self.close_code: int | None = None
        self.status = b""

    # -- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.on_lost()

    def data_received(self, data: bytes) -> None:
        if self.buf:
            data = self.buf + data
            self.buf = b""
        if not self.open:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf = data
                return
            self.status = data[: data.find(b"\r\n")]
            if not data.startswith(b"HTTP/1.1 101"):
                self.transport.close()
                return
            self.open = True
            data = data[end + 4 :]
            self.on_open()
        pos, n = 0, len(data)
        while n - pos >= 2:
            b1 = data[pos + 1] & 0x7F
            if b1 < 126:
                start = pos + 2
            elif b1 == 126:
                if n - pos < 4:
                    break
                b1 = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            else:
                if n - pos < 10:
                    break
                b1 = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + b1
            if end > n:
                break
            op = data[pos] & 0x0F
            pos = end
            if op == OP_TEXT:
                self.on_text(data[start:end])
            elif op == OP_PING:
                self.transport.write(client_frame(data[start:end], self.key, OP_PONG))
            elif op == OP_CLOSE:
                body = data[start:end]
                self.close_code = int.from_bytes(body[:2], "big") if len(body) >= 2 else 1005
                if not self.transport.is_closing():
                    self.transport.write(client_frame(body[:2], self.key, OP_CLOSE))
                    self.transport.close()
                return
        if pos < n:
            self.buf = data[pos:]

    # -- for subclasses ----------------------------------------------------------

    def on_open(self) -> None:
        pass

    def on_text(self, payload: bytes) -> None:
        pass

    def on_lost(self) -> None:
        pass

    def send_raw(self, frame: bytes) -> None:
        if not self.closed and not self.transport.is_closing():
            self.transport.write(frame)

    def send_text(self, payload: bytes) -> None:
        self.send_raw(client_frame(payload, self.key))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if self.open:
                self.transport.write(client_frame(b"\x03\xe8", self.key, OP_CLOSE))
            self.transport.close()


# -- HTTP -------------------------------------------------------------------------

_COOKIE = re.compile(rb"^set-cookie:\s*([^=;\s]+)=([^;\r\n]*)", re.I | re.M)


async def _request(reader, writer, raw: bytes) -> tuple[int, bytes, bytes]:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"^content-length:\s*(\d+)", head, re.I | re.M)
    body = await reader.readexactly(int(m.group(1))) if m else b""
    return status, head, body


def cookies_of(head: bytes) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in _COOKIE.findall(head)}


async def fetch_cookies(
    host: str, port: int, path: str, name: str, n: int, conns: int = 8, timeout: float = 120.0
) -> list[str]:
    """`n` fresh device cookies, one GET each, on `conns` keep-alive connections
    (reconnecting whenever the server closes one)."""
    out: list[str] = []
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: leitai-bench\r\n\r\n".encode()
    remaining = [n]

    async def worker() -> None:
        reader = writer = None
        while remaining[0] > 0:
            remaining[0] -= 1
            for attempt in range(5):
                try:
                    if writer is None:
                        reader, writer = await asyncio.open_connection(host, port)
                    status, head, _ = await _request(reader, writer, request)
                    if status != 200:
                        raise RuntimeError(f"GET {path}: HTTP {status}")
                    value = cookies_of(head).get(name)
                    if not value:
                        raise RuntimeError(f"GET {path}: no {name} cookie")
                    out.append(value)
                    if re.search(rb"^connection:\s*close", head, re.I | re.M):
                        writer.close()
                        reader = writer = None
                    break
                except (OSError, asyncio.IncompleteReadError):
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.05 * (attempt + 1))
        if writer is not None:
            writer.close()

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(conns))), timeout)
    return out


async def post_form(host: str, port: int, path: str, form: str) -> tuple[int, dict[str, str]]:
    reader, writer = await asyncio.open_connection(host, port)
    body = form.encode()
    raw = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    try:
        status, head, _ = await _request(reader, writer, raw)
    finally:
        writer.close()
    return status, cookies_of(head)
