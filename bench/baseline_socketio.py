"""Baseline (b): the same job on python-socketio (ASGI on uvicorn), what many
users would pick instead.

    python -m bench.baseline_socketio [--host 127.0.0.1] [--port 0] [--secret S]

`GET /s/demo` sets a signed `lt_device` cookie. Clients connect to
`/socket.io/?EIO=4&transport=websocket&role=audience|overlay|console` (phones
with the cookie, else the connection is refused); the server emits a small
`snapshot` event, counts `like` events, acknowledges `vote`, `ask` and
`round.start` (Socket.IO acks), and emits `tally` to the `overlay` and
`console` rooms every 100 ms and to the `audience` room every 500 ms, each only
when it changed. Uvicorn runs with the same options as Leitai: uvloop,
httptools, the sans-I/O `websockets` implementation, no per-message deflate.
"""

import argparse
import asyncio
import hashlib
import hmac
import os
import secrets
import socket
from urllib.parse import parse_qs

import socketio
import uvicorn

TICK_S = 0.1
PHONE_EVERY = 5


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--secret", default=os.environ.get("SECRET_KEY", "bench"))
    args = ap.parse_args()
    secret = args.secret.encode()

    def sign(device: str) -> str:
        return device + "." + hmac.new(secret, device.encode(), hashlib.sha256).hexdigest()[:32]

    def device_of(cookie_header: str | None) -> str | None:
        for part in (cookie_header or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "lt_device":
                device, _, _sig = value.rpartition(".")
                if device and hmac.compare_digest(sign(device), value):
                    return device
        return None

    sio = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)
    likes = {"a": 0, "b": 0}
    votes: dict[str, str] = {}
    devices: dict[str, str] = {}
    phones: set[str] = set()
    questions = [0]

    def tally() -> dict:
        v = {"a": 0, "b": 0}
        for side in votes.values():
            v[side] += 1
        return {"seq": 0, "likes": dict(likes), "votes": v, "points": {"a": 0, "b": 0}, "viewers": len(phones)}

    async def send_snapshot(sid: str, role: str) -> None:
        await sio.emit("snapshot", {"seq": 0, "role": role, "show": {"slug": "demo", "tally": tally()}}, to=sid)

    @sio.event
    async def connect(sid, environ, auth):
        role = (parse_qs(environ.get("QUERY_STRING", "")).get("role") or [""])[0]
        if role == "audience":
            device = device_of(environ.get("HTTP_COOKIE"))
            if not device:
                raise socketio.exceptions.ConnectionRefusedError("4401")
            devices[sid] = device
            phones.add(sid)
        elif role not in ("overlay", "console"):
            raise socketio.exceptions.ConnectionRefusedError("4404")
        await sio.enter_room(sid, role)
        sio.start_background_task(send_snapshot, sid, role)

    @sio.event
    async def disconnect(sid, reason=None):
        phones.discard(sid)
        devices.pop(sid, None)

    @sio.on("like")
    async def like(sid, data):
        count = data.get("count")
        side = data.get("side")
        if type(count) is int and 1 <= count <= 50 and side in likes and sid in devices:
            likes[side] += count

    @sio.on("hello")
    async def hello(sid, data=None):
        pass

    @sio.on("vote")
    async def vote(sid, data):
        device = devices.get(sid)
        if device is None or data.get("side") not in likes:
            return {"error": "invalid"}
        votes[device] = data["side"]
        return {"ok": True}

    @sio.on("ask")
    async def ask(sid, data):
        if sid not in devices:
            return {"error": "forbidden"}
        questions[0] += 1
        return {"question": f"q{questions[0]}"}

    @sio.on("round.start")
    async def round_start(sid, data):
        votes.clear()
        return {"ok": True}

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        fast_last = phone_last = None
        n = 0
        next_at = loop.time()
        while True:
            next_at += TICK_S
            n += 1
            body = tally()
            if body != fast_last:
                fast_last = body
                await sio.emit("tally", body, room="overlay")
                await sio.emit("tally", body, room="console")
            if n % PHONE_EVERY == 0 and body != phone_last:
                phone_last = body
                await sio.emit("tally", body, room="audience")
            delay = next_at - loop.time()
            if delay < 0:
                next_at = loop.time()
                delay = 0
            await asyncio.sleep(delay)

    async def pages(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        headers = [(b"content-type", b"text/plain")]
        if scope["path"] == "/s/demo":
            status, body = 200, b"audience page\n"
            cookie = dict(scope["headers"]).get(b"cookie", b"").decode()
            if device_of(cookie) is None:
                headers.append(
                    (
                        b"set-cookie",
                        f"lt_device={sign(secrets.token_urlsafe(16))}; Path=/; HttpOnly; SameSite=Lax".encode(),
                    )
                )
        elif scope["path"] == "/healthz":
            status, body = 200, b"ok\n"
        else:
            status, body = 404, b"not found\n"
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    tasks: list[asyncio.Task] = []

    async def startup() -> None:
        tasks.append(asyncio.create_task(ticker()))

    app = socketio.ASGIApp(sio, other_asgi_app=pages, on_startup=startup)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    config = uvicorn.Config(
        app,
        host=args.host,
        port=sock.getsockname()[1],
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        backlog=2048,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    print(f"Uvicorn running on http://{args.host}:{sock.getsockname()[1]} (python-socketio baseline)", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
