"""Baseline (a): the same job on the `websockets` library alone, written as a
competent engineer would for this load.

    python -m bench.baseline_websockets [--host 127.0.0.1] [--port 0] [--secret S]

Only what the benchmark exercises, on Leitai's wire protocol: `GET /s/demo`
sets a signed `lt_device` cookie; `/ws/audience/demo` (cookie required, else
4401), `/ws/overlay/demo` and `/ws/console/demo`; the first frame is a small
snapshot; likes are counted, votes and questions acknowledged, `round.start`
acknowledged.

What it shares with Leitai (`bench/baseline_common.py`): the per-role schedule
(overlays and consoles every `TICK_MS`, phones every `PHONE_TICK_MS` in groups,
one group per tick), the GC settings (start-up objects frozen,
`GC_THRESHOLD0`), the tally frame (same keys, encoded once per tick), ping
interval and timeout, maximum frame size, no per-message deflate, uvloop.

The fan-out is the library's idiomatic one, `websockets.broadcast()`: one
encoding per tick, but a WebSocket frame built per connection (Leitai frames
once for all). That difference is what the comparison is meant to show.
Frames are read with `recv(decode=False)`: orjson parses bytes, so the
UTF-8 decode to `str` is skipped.
"""

import argparse
import asyncio
import os
import secrets
import socket
import sys

import orjson
from websockets.asyncio.server import broadcast, serve
from websockets.exceptions import ConnectionClosed

from .baseline_common import Cookies, Counts, Groups, Schedule, encode


class Show:
    def __init__(self, groups: int) -> None:
        self.counts = Counts()
        self.overlays: set = set()  # overlays and consoles: every tick
        self.phones = Groups(groups)

    def tally(self) -> dict:
        return self.counts.tally(len(self.phones), len(self.overlays))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--secret", default=os.environ.get("SECRET_KEY", "bench"))
    args = ap.parse_args()
    sched = Schedule.from_env()
    cookies = Cookies(args.secret)
    show = Show(sched.groups)
    counts = show.counts

    def process_request(connection, request):
        path = request.path
        if path.startswith("/ws/"):
            return None
        if path == "/s/demo":
            response = connection.respond(200, "audience page\n")
            if cookies.device_of(request.headers.get("Cookie")) is None:
                response.headers["Set-Cookie"] = (
                    f"lt_device={cookies.sign(secrets.token_urlsafe(16))}; Path=/; HttpOnly; SameSite=Lax"
                )
            return response
        if path == "/healthz":
            return connection.respond(200, "ok\n")
        return connection.respond(404, "not found\n")

    def reply_to(msg: dict, role: str, device: str) -> dict:
        kind = msg["type"]
        if kind == "vote" and role == "audience" and msg["side"] in counts.votes:
            counts.vote(device, msg["side"])
            return {"type": "ack", "id": msg.get("id")}
        if kind == "ask" and role == "audience":
            counts.questions += 1
            return {"type": "ack", "id": msg.get("id"), "question": f"q{counts.questions}"}
        if kind == "round.start" and role == "console":
            counts.clear_votes()
            return {"type": "ack", "id": msg.get("id")}
        return {"type": "error", "id": msg.get("id"), "code": "invalid"}

    async def handler(ws) -> None:
        parts = ws.request.path.split("/")
        if len(parts) != 4 or parts[3] != "demo":
            await ws.close(4404)
            return
        role = parts[2]
        device = ""
        if role == "audience":
            device = cookies.device_of(ws.request.headers.get("Cookie")) or ""
            if not device:
                await ws.close(4401)
                return
            counts.unique.add(device)
        elif role not in ("overlay", "console"):
            await ws.close(4404)
            return
        await ws.send(
            encode({"type": "snapshot", "seq": 0, "role": role, "show": {"slug": "demo", "tally": show.tally()}}),
            text=True,
        )
        if role == "audience":
            show.phones.add(ws)
        else:
            show.overlays.add(ws)
        likes = counts.likes
        recv = ws.recv
        try:
            while True:
                raw = await recv(decode=False)
                try:
                    msg = orjson.loads(raw)
                    kind = msg["type"]
                    if kind == "like" and role == "audience":
                        count = msg["count"]
                        side = msg["side"]
                        if type(count) is int and 1 <= count <= 50 and side in likes:
                            likes[side] += count
                        continue
                    if kind == "hello":
                        continue
                    reply = reply_to(msg, role, device)
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    reply = {"type": "error", "code": "invalid"}
                await ws.send(encode(reply), text=True)
        except ConnectionClosed:
            pass
        finally:
            if role == "audience":
                show.phones.remove(ws)
            else:
                show.overlays.discard(ws)

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        groups = sched.groups
        fast_last = b""
        phone_last = [b""] * groups
        n = 0
        next_at = loop.time()
        while True:
            next_at += sched.tick_s
            n += 1
            body = encode(show.tally())
            if body != fast_last:
                fast_last = body
                broadcast(show.overlays, body, text=True)
            g = n % groups
            if body != phone_last[g]:
                phone_last[g] = body
                broadcast(show.phones.sets[g], body, text=True)
            delay = next_at - loop.time()
            if delay < 0:  # overran: skip the missed ticks (as server/node/ticker.py)
                next_at = loop.time()
                delay = 0
            await asyncio.sleep(delay)

    async def run() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
        async with serve(
            handler,
            sock=sock,
            process_request=process_request,
            compression=None,
            backlog=2048,
            ping_interval=sched.ping_interval_s,
            ping_timeout=sched.ping_timeout_s,
            max_size=sched.max_size,
        ) as server:
            port = server.sockets[0].getsockname()[1]
            task = asyncio.create_task(ticker())
            sched.tune_gc()
            print(f"Uvicorn running on http://{args.host}:{port} (websockets baseline)", flush=True)
            print("Application startup complete.", flush=True)
            try:
                await server.serve_forever()
            finally:
                task.cancel()

    try:
        import uvloop

        uvloop.run(run())
    except ImportError:  # pragma: no cover
        asyncio.run(run())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
