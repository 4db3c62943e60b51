"""Baseline (b): the same job on python-socketio (ASGI on uvicorn), configured
as a competent engineer would for this load.

    python -m bench.baseline_socketio [--host 127.0.0.1] [--port 0] [--secret S]

`GET /s/demo` sets a signed `lt_device` cookie. Clients connect to
`/socket.io/?EIO=4&transport=websocket&role=audience|overlay|console` (phones
with the cookie, else the connection is refused); the server emits a small
`snapshot` event, counts `like` events, acknowledges `vote`, `ask` and
`round.start` (Socket.IO acks).

What it shares with Leitai (`bench/baseline_common.py`): the per-role schedule
(the `overlay` and `console` rooms every `TICK_MS`; phones in
`round(PHONE_TICK_MS / TICK_MS)` rooms `audience0`…, one room per tick, each
only when its tally changed), the GC settings, the tally's keys, ping interval
and timeout. Uvicorn runs with Leitai's options: uvloop, httptools, the sans-I/O
`websockets` implementation, no per-message deflate.

Configured for the load:

* `async_handlers=False`: an event is handled inline in its socket's read
  loop, not in a new task per event (python-socketio's default starts one per
  like);
* orjson as the JSON module (one `dumps` per emit, one `loads` per packet; the
  default is the standard library's `json`);
* one `emit` per tick to the overlay and console rooms together (`to=[...]`),
  one to the phone group's room: each is encoded once for all its recipients
  (python-socketio does that itself when no callback is asked for);
* WebSocket transport only, no HTTP compression, no logging.

What remains is the library's design: an `emit` to a room creates one asyncio
task per recipient, which puts the packet on that socket's queue, drained by a
writer task per socket; each incoming packet goes through a new
`asyncio.ensure_future` + `wait_for` in Engine.IO's read loop.
"""

import argparse
import asyncio
import os
import secrets
import socket
from urllib.parse import parse_qs

import orjson
import socketio
import uvicorn

from .baseline_common import Cookies, Counts, Groups, Schedule


class OrjsonModule:
    """The interface python-socketio and python-engineio expect of `json=`."""

    @staticmethod
    def dumps(obj, **_kw) -> str:
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(s, **_kw):
        return orjson.loads(s)

    JSONDecodeError = orjson.JSONDecodeError


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--secret", default=os.environ.get("SECRET_KEY", "bench"))
    args = ap.parse_args()
    sched = Schedule.from_env()
    cookies = Cookies(args.secret)

    sio = socketio.AsyncServer(
        async_mode="asgi",
        async_handlers=False,
        json=OrjsonModule,
        transports=["websocket"],
        http_compression=False,
        ping_interval=sched.ping_interval_s,
        ping_timeout=sched.ping_timeout_s,
        max_http_buffer_size=sched.max_size,
        logger=False,
        engineio_logger=False,
    )
    counts = Counts()
    likes = counts.likes
    devices: dict[str, str] = {}
    phones = Groups(sched.groups)
    screens: set[str] = set()

    def tally() -> dict:
        t = counts.tally(len(phones), len(screens))
        del t["type"]  # the event name says it
        return t

    async def send_snapshot(sid: str, role: str) -> None:
        await sio.emit("snapshot", {"seq": 0, "role": role, "show": {"slug": "demo", "tally": tally()}}, to=sid)

    @sio.event
    async def connect(sid, environ, auth):
        role = (parse_qs(environ.get("QUERY_STRING", "")).get("role") or [""])[0]
        if role == "audience":
            device = cookies.device_of(environ.get("HTTP_COOKIE"))
            if not device:
                raise socketio.exceptions.ConnectionRefusedError("4401")
            devices[sid] = device
            counts.unique.add(device)
            await sio.enter_room(sid, f"audience{phones.add(sid)}")
        elif role in ("overlay", "console"):
            screens.add(sid)
            await sio.enter_room(sid, role)
        else:
            raise socketio.exceptions.ConnectionRefusedError("4404")
        # the snapshot must follow the connect packet, which is sent after this handler returns
        sio.start_background_task(send_snapshot, sid, role)

    @sio.event
    async def disconnect(sid, reason=None):
        phones.remove(sid)
        screens.discard(sid)
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
        counts.vote(device, data["side"])
        return {"ok": True}

    @sio.on("ask")
    async def ask(sid, data):
        if sid not in devices:
            return {"error": "forbidden"}
        counts.questions += 1
        return {"question": f"q{counts.questions}"}

    @sio.on("round.start")
    async def round_start(sid, data):
        counts.clear_votes()
        return {"ok": True}

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        groups = sched.groups
        fast_last: tuple = ()
        phone_last: list[tuple] = [()] * groups
        n = 0
        next_at = loop.time()
        while True:
            next_at += sched.tick_s
            n += 1
            body = tally()
            key = (*body["likes"].values(), *body["votes"].values(), body["viewers"], body["overlays"])
            if key != fast_last:
                fast_last = key
                await sio.emit("tally", body, to=["overlay", "console"])
            g = n % groups
            if key != phone_last[g]:
                phone_last[g] = key
                await sio.emit("tally", body, room=f"audience{g}")
            delay = next_at - loop.time()
            if delay < 0:  # overran: skip the missed ticks (as server/node/ticker.py)
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
            if cookies.device_of(cookie) is None:
                value = f"lt_device={cookies.sign(secrets.token_urlsafe(16))}; Path=/; HttpOnly; SameSite=Lax"
                headers.append((b"set-cookie", value.encode()))
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
        sched.tune_gc()

    app = socketio.ASGIApp(sio, other_asgi_app=pages, on_startup=startup)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    # listen now: uvicorn says "Application startup complete" before it listens on a
    # socket it is given, and the bench connects as soon as it reads that line
    sock.listen(2048)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=sock.getsockname()[1],
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_max_size=sched.max_size,
        ws_per_message_deflate=False,
        ws_ping_interval=None,  # Engine.IO has its own heartbeat (ping_interval above): not two
        backlog=2048,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    print(f"Uvicorn running on http://{args.host}:{sock.getsockname()[1]} (python-socketio baseline)", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
