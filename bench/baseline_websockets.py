"""Baseline (a): the same job on the `websockets` library alone — the practical
ceiling for Python fan-out.

    python -m bench.baseline_websockets [--host 127.0.0.1] [--port 0] [--secret S]

Only what the benchmark exercises, on Leitai's wire protocol: `GET /s/demo`
sets a signed `lt_device` cookie; `/ws/audience/demo` (cookie required, else
4401), `/ws/overlay/demo` and `/ws/console/demo`; the first frame is a small
snapshot; likes are counted, votes and questions acknowledged, `round.start`
acknowledged; a `tally` goes out with `websockets.broadcast()` every 100 ms to
overlays and consoles and every 500 ms to phones, each only when it changed.
No per-message deflate; uvloop.
"""

import argparse
import asyncio
import hashlib
import hmac
import os
import secrets
import socket
import sys

import orjson
from websockets.asyncio.server import broadcast, serve

TICK_S = 0.1
PHONE_EVERY = 5


class Show:
    def __init__(self) -> None:
        self.likes = {"a": 0, "b": 0}
        self.votes: dict[str, str] = {}
        self.questions = 0
        self.overlays: set = set()
        self.phones: set = set()

    def tally(self) -> dict:
        v = {"a": 0, "b": 0}
        for side in self.votes.values():
            v[side] += 1
        return {
            "seq": 0,
            "type": "tally",
            "likes": dict(self.likes),
            "votes": v,
            "points": {"a": 0, "b": 0},
            "viewers": len(self.phones),
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--secret", default=os.environ.get("SECRET_KEY", "bench"))
    args = ap.parse_args()
    secret = args.secret.encode()
    show = Show()

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

    def process_request(connection, request):
        path = request.path
        if path.startswith("/ws/"):
            return None
        if path == "/s/demo":
            response = connection.respond(200, "audience page\n")
            if device_of(request.headers.get("Cookie")) is None:
                response.headers["Set-Cookie"] = (
                    f"lt_device={sign(secrets.token_urlsafe(16))}; Path=/; HttpOnly; SameSite=Lax"
                )
            return response
        if path == "/healthz":
            return connection.respond(200, "ok\n")
        return connection.respond(404, "not found\n")

    async def handler(ws) -> None:
        parts = ws.request.path.split("/")
        if len(parts) != 4 or parts[3] != "demo":
            await ws.close(4404)
            return
        role = parts[2]
        device = ""
        if role == "audience":
            device = device_of(ws.request.headers.get("Cookie")) or ""
            if not device:
                await ws.close(4401)
                return
        elif role not in ("overlay", "console"):
            await ws.close(4404)
            return
        await ws.send(
            orjson.dumps({"type": "snapshot", "seq": 0, "role": role, "show": {"slug": "demo", "tally": show.tally()}}),
            text=True,
        )
        group = show.phones if role == "audience" else show.overlays
        group.add(ws)
        likes = show.likes
        try:
            async for raw in ws:
                try:
                    msg = orjson.loads(raw)
                    kind = msg["type"]
                    if kind == "like" and role == "audience":
                        count = msg["count"]
                        if type(count) is int and 1 <= count <= 50 and msg["side"] in likes:
                            likes[msg["side"]] += count
                        continue
                    if kind == "hello":
                        continue
                    if kind == "vote" and role == "audience":
                        show.votes[device] = msg["side"]
                        reply = {"type": "ack", "id": msg.get("id")}
                    elif kind == "ask" and role == "audience":
                        show.questions += 1
                        reply = {"type": "ack", "id": msg.get("id"), "question": f"q{show.questions}"}
                    elif kind == "round.start" and role == "console":
                        show.votes.clear()
                        reply = {"type": "ack", "id": msg.get("id")}
                    else:
                        reply = {"type": "error", "id": msg.get("id"), "code": "invalid"}
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    reply = {"type": "error", "code": "invalid"}
                await ws.send(orjson.dumps(reply), text=True)
        except Exception:
            pass
        finally:
            group.discard(ws)

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        fast_last = phone_last = b""
        n = 0
        next_at = loop.time()
        while True:
            next_at += TICK_S
            n += 1
            body = orjson.dumps(show.tally())
            if body != fast_last:
                fast_last = body
                broadcast(show.overlays, body, text=True)
            if n % PHONE_EVERY == 0 and body != phone_last:
                phone_last = body
                broadcast(show.phones, body, text=True)
            delay = next_at - loop.time()
            if delay < 0:
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
            ping_interval=20,
            ping_timeout=20,
            max_size=65536,
        ) as server:
            port = server.sockets[0].getsockname()[1]
            print(f"Uvicorn running on http://{args.host}:{port} (websockets baseline)", flush=True)
            print("Application startup complete.", flush=True)
            task = asyncio.create_task(ticker())
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
