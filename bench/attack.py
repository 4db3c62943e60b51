"""A hostile viewer on one network, tried against a real Leitai server (loopback only).

    scripts/attack votes --minutes 10      # mint devices and vote from one network, before and during a round
    scripts/attack reconnect --seconds 20  # one device reconnecting in a loop vs one honest socket
    scripts/attack venue --phones 800      # a hall of phones on one declared venue network
    scripts/attack pages --gets 2000       # new phones loading the page from one address
    scripts/attack slowloris --conns 6000  # half-sent requests from two addresses vs an honest phone
    scripts/attack all --quick             # each of them, small and fast

Every run starts its own server on a free port with the default settings (unless
`--env NAME=VALUE` says otherwise) and prints what was counted. Other networks
are posed as with `X-Forwarded-For`, which the server trusts from 127.0.0.1 only
(as it would from the proxy in front of it). docs/reliability.md ("Integrity")
reports the figures; tests/test_integrity.py runs small versions in the suite.
"""

import argparse
import asyncio
import contextlib
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import altcha
import httpx
import orjson
import websockets

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "attack-host-token"


# -- a server of our own ------------------------------------------------------------------------


class LocalServer:
    """`python -m server` on a free loopback port."""

    def __init__(self, **env: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="leitai-attack-")
        self.env = {
            **os.environ,
            "PORT": "0",
            "HOST": "127.0.0.1",
            "DATA_DIR": self.dir,
            "HOST_TOKEN": TOKEN,
            "SECRET_KEY": "attack-secret",
            "LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.env.pop("REDIS_URL", None)
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> "LocalServer":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server"],
            cwd=ROOT,
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        ready = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                m = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(30):
            raise RuntimeError("the server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(15)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# -- pieces a script (or a page) uses ----------------------------------------------------------------


def solve(challenge: dict) -> str:
    ch = altcha.Challenge.from_dict(challenge)
    return altcha.Payload(ch, altcha.solve_challenge(ch)).to_base64()


async def fresh(http: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], **kw: Any) -> httpx.Response:
    """A request without the client's cookie jar: each phone is a browser of its own
    (the jar holds the last phone's device cookie, which would make this one look known)."""
    return await http.send(httpx.Request(method, http.base_url.join(path), headers=headers, **kw))


async def mint(http: httpx.AsyncClient, slug: str, ip: str, pool: ProcessPoolExecutor | None = None) -> str:
    """A device cookie, got as a page gets one (with the page on a venue, else by the work)."""
    headers = {"X-Forwarded-For": ip}
    r = await fresh(http, "GET", f"/s/{slug}", headers)
    if r.status_code != 200:
        raise RuntimeError(f"page: HTTP {r.status_code}")
    if "lt_device" in r.cookies:
        return str(r.cookies["lt_device"])
    challenge = (await fresh(http, "GET", "/api/device/challenge", headers)).json()
    loop = asyncio.get_running_loop()
    payload = await loop.run_in_executor(pool, solve, challenge) if pool else solve(challenge)
    while True:
        r = await fresh(http, "POST", "/api/device", headers, json={"payload": payload})
        if r.status_code != 429:
            break
        await asyncio.sleep(r.json().get("retry_ms", 500) / 1000)
    if r.status_code != 200:
        raise RuntimeError(f"device: HTTP {r.status_code} {r.text}")
    return str(r.cookies["lt_device"])


def host_session(base: str, token: str = TOKEN) -> str:
    r = httpx.post(f"{base}/login", data={"token": token, "next": "/shows"})
    return str(r.cookies["lt_session"])


def create_show(base: str, session: str, slug: str) -> None:
    body = {
        "slug": slug,
        "title": "攻击演练",
        "status": "live",
        "sides": {"a": {"name": "红方"}, "b": {"name": "蓝方"}},
    }
    r = httpx.post(f"{base}/api/shows", json=body, cookies={"lt_session": session})
    assert r.status_code == 201, r.text


class Refused(Exception):
    """The server closed the socket before its snapshot (e.g. 1013: a reconnect loop)."""


class Socket:
    """One WebSocket with a reader that keeps replies by id and the last tally."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.replies: dict[str, asyncio.Future[dict]] = {}
        self.tally: dict | None = None
        self.snapshot: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(self._read())
        self.n = 0

    @classmethod
    async def open(
        cls, base: str, role: str, slug: str, cookie: str = "", ip: str = "127.0.0.1", query: str = ""
    ) -> "Socket":
        headers = {"X-Forwarded-For": ip}
        if cookie:
            headers["Cookie"] = cookie
        url = base.replace("http", "ws", 1) + f"/ws/{role}/{slug}" + (f"?{query}" if query else "")
        sock = cls(await websockets.connect(url, additional_headers=headers, compression=None, max_size=2**22))
        done, _ = await asyncio.wait([sock.snapshot, sock.closed], timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if sock.snapshot not in done:
            await sock.close()
            raise Refused(sock.ws.close_code)
        if role != "overlay":
            await sock.send({"type": "hello"})
        return sock

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = orjson.loads(raw)
                kind = frame.get("type")
                if kind == "snapshot" and not self.snapshot.done():
                    self.snapshot.set_result(frame)
                elif kind == "tally":
                    self.tally = frame
                elif kind in ("ack", "error") and frame.get("id") in self.replies:
                    future = self.replies.pop(frame["id"])
                    if not future.done():
                        future.set_result(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            if not self.closed.done():
                self.closed.set_result(self.ws.close_code)

    async def send(self, msg: dict) -> None:
        await self.ws.send(orjson.dumps(msg).decode())

    async def request(self, msg: dict, timeout: float = 10) -> dict:
        self.n += 1
        msg_id = f"a{self.n}-{id(self) % 100000}"
        future: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self.replies[msg_id] = future
        await self.send({**msg, "id": msg_id})
        return await asyncio.wait_for(future, timeout)

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self.task, return_exceptions=True)


# -- 1. votes from one network, before and during a round ---------------------------------------


@dataclass
class VotesResult:
    minutes: float
    devices: int = 0  # devices the script got
    voted: int = 0
    counted: int = 0  # of the script's votes
    held: int = 0
    honest: int = 0
    honest_counted: int = 0
    round_votes: dict = field(default_factory=dict)
    held_reasons: dict = field(default_factory=dict)
    seconds_per_device: list[float] = field(default_factory=list)


async def attack_votes(
    base: str, slug: str, minutes: float, honest: int = 40, workers: int = 2, token: str = TOKEN
) -> VotesResult:
    """One network scripts freely for `minutes`: it mints devices (doing the work in
    `workers` processes), keeps each watching, and votes with every one for side b
    once a round starts (at 60 % of the time) and through it. `honest` phones on
    networks of their own vote too."""
    result = VotesResult(minutes)
    session = host_session(base, token)
    console = await Socket.open(base, "console", slug, f"lt_session={session}")
    attacker_ip = "203.0.113.7"
    end = time.monotonic() + minutes * 60
    round_at = time.monotonic() + minutes * 60 * 0.6
    voters: list[Socket] = []
    casting: list[asyncio.Task[None]] = []
    round_open = asyncio.Event()

    async def vote(sock: Socket, side: str) -> bool | None:
        for _ in range(20):
            reply = await sock.request({"type": "vote", "side": side})
            if reply["type"] == "ack":
                return bool(reply.get("counted"))
            if reply.get("retry_ms"):
                await asyncio.sleep(reply["retry_ms"] / 1000)
                continue
            return None
        return None

    async def scripted(http: httpx.AsyncClient, pool: ProcessPoolExecutor) -> None:
        while time.monotonic() < end - 5:
            started = time.monotonic()
            try:
                cookie = await mint(http, slug, attacker_ip, pool)
            except Exception:
                await asyncio.sleep(0.5)
                continue
            result.seconds_per_device.append(time.monotonic() - started)
            result.devices += 1
            sock = await Socket.open(base, "audience", slug, f"lt_device={cookie}", attacker_ip)
            voters.append(sock)
            if round_open.is_set():
                casting.append(asyncio.create_task(cast(sock)))

    async def cast(sock: Socket) -> None:
        counted = await vote(sock, "b")
        if counted is not None:
            result.voted += 1
            result.counted += counted
            result.held += not counted

    async def honest_phone(i: int, http: httpx.AsyncClient) -> None:
        ip = f"198.18.{i}.10"
        cookie = await mint(http, slug, ip)
        sock = await Socket.open(base, "audience", slug, f"lt_device={cookie}", ip)
        await round_open.wait()
        await asyncio.sleep(random.uniform(0, 20))
        counted = await vote(sock, random.choice("ab"))
        result.honest += counted is not None
        result.honest_counted += bool(counted)

    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        with ProcessPoolExecutor(workers) as pool:
            tasks = [asyncio.create_task(scripted(http, pool)) for _ in range(workers)]
            tasks += [asyncio.create_task(honest_phone(i, http)) for i in range(honest)]
            await asyncio.sleep(max(0.0, round_at - time.monotonic()))
            reply = await console.request({"type": "round.start", "topic": "演练轮", "duration_s": 3600})
            assert reply["type"] == "ack", reply
            round_open.set()
            await asyncio.gather(*(cast(sock) for sock in list(voters)))
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*casting, return_exceptions=True)
    await asyncio.sleep(0.5)
    tally = console.tally or {}
    result.round_votes = tally.get("votes", {})
    result.held_reasons = tally.get("held_reasons", {})
    for sock in voters:
        await sock.close()
    await console.close()
    return result


# -- 2. one device reconnecting in a loop ------------------------------------------------------------


@dataclass
class ReconnectResult:
    seconds: float
    connections: int = 0
    refused: int = 0  # connections closed before their snapshot
    like_frames: int = 0
    likes_counted: int = 0
    questions: int = 0
    honest_likes_counted: int = 0
    honest_questions: int = 0


async def attack_reconnect(base: str, slug_attack: str, slug_honest: str, seconds: float) -> ReconnectResult:
    """One device reconnects in a loop for `seconds`, each time sending like frames as
    fast as the socket takes them and a question; one honest phone taps as fast as a
    thumb does (20/s) and asks every ten seconds on one socket (on a show of its own,
    so the two counts stay apart)."""
    result = ReconnectResult(seconds)
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        attacker = await mint(http, slug_attack, "203.0.113.9")
        honest = await mint(http, slug_honest, "198.19.0.9")
    end = time.monotonic() + seconds

    async def loop() -> None:
        while time.monotonic() < end:
            try:
                sock = await Socket.open(base, "audience", slug_attack, f"lt_device={attacker}", "203.0.113.9")
            except Refused:
                result.refused += 1
                continue
            result.connections += 1
            reply = await sock.request({"type": "ask", "text": f"刷屏问题 {result.connections}"})
            result.questions += reply["type"] == "ack"
            for _ in range(80):
                await sock.send({"type": "like", "side": "b", "count": 50})
                result.like_frames += 1
            await sock.close()

    async def person() -> None:
        sock = await Socket.open(base, "audience", slug_honest, f"lt_device={honest}", "198.19.0.9")
        asked = 0.0
        while time.monotonic() < end:
            if time.monotonic() - asked >= 10:
                asked = time.monotonic()
                reply = await sock.request({"type": "ask", "text": "正常提问"})
                result.honest_questions += reply["type"] == "ack"
            await sock.send({"type": "like", "side": "a", "count": 5})  # a fast thumb: 20 taps/s
            await asyncio.sleep(0.25)
        await sock.close()

    await asyncio.gather(loop(), person())
    await asyncio.sleep(1.0)  # the last tick
    for slug, attr in ((slug_attack, "likes_counted"), (slug_honest, "honest_likes_counted")):
        snap = httpx.get(f"{base}/api/shows/{slug}").json()
        likes = snap["show"]["tally"]["likes"]
        setattr(result, attr, likes["a"] + likes["b"])
    return result


# -- 3. a hall of phones on one declared venue network -----------------------------------------------


@dataclass
class VenueResult:
    phones: int
    joined: int = 0
    counted: int = 0
    join_s: list[float] = field(default_factory=list)
    window_s: float = 0.0


async def attack_venue(base: str, slug: str, phones: int, window_s: float = 60.0, token: str = TOKEN) -> VenueResult:
    """`phones` phones on one address arrive over `window_s` seconds, load the page,
    connect and vote; the host declared the hall's network from the console."""
    result = VenueResult(phones, window_s=window_s)
    session = host_session(base, token)
    console = await Socket.open(base, "console", slug, f"lt_session={session}")
    reply = await console.request({"type": "venue.add", "network": "10.77.0.0/16"})
    assert reply["type"] == "ack", reply
    assert (await console.request({"type": "round.start", "topic": "现场投票", "duration_s": 600}))["type"] == "ack"
    socks: list[Socket] = []
    started = time.monotonic()

    async def phone(i: int, http: httpx.AsyncClient) -> None:
        await asyncio.sleep(window_s * i / phones)
        t0 = time.monotonic()
        cookie = await mint(http, slug, "10.77.3.21")
        sock = await Socket.open(base, "audience", slug, f"lt_device={cookie}", "10.77.3.21")
        result.join_s.append(time.monotonic() - t0)
        socks.append(sock)
        result.joined += 1
        reply = await sock.request({"type": "vote", "side": random.choice("ab")})
        result.counted += reply["type"] == "ack" and bool(reply.get("counted"))

    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        await asyncio.gather(*(phone(i, http) for i in range(phones)))
    result.window_s = time.monotonic() - started
    for sock in socks:
        await sock.close()
    await console.close()
    return result


# -- 4. new phones loading the page from one address ---------------------------------------------------


async def attack_pages(base: str, slug: str, gets: int) -> dict[int, int]:
    """`gets` page loads without a cookie from one address: the status codes seen."""
    codes: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=50)) as http:

        async def one() -> None:
            r = await fresh(http, "GET", f"/s/{slug}", {"X-Forwarded-For": "203.0.113.50"})
            codes[r.status_code] = codes.get(r.status_code, 0) + 1

        for start in range(0, gets, 100):
            await asyncio.gather(*(one() for _ in range(min(100, gets - start))))
    return codes


# -- 5. slowloris: half-sent requests held open from a few addresses ---------------------------------------


@dataclass
class SlowlorisResult:
    seconds: float
    addresses: int
    opened: int = 0  # partial connections the script opened (with its re-opens)
    refused: int = 0  # closed by the server within 1 s of opening (the cap per address)
    timed_out: int = 0  # closed by the server later (the header deadline)
    held_max: int = 0  # the most partial connections open at once
    lifetimes: list[float] = field(default_factory=list)  # seconds until the deadline closed one
    page_s: list[float] = field(default_factory=list)
    page_failed: int = 0
    socket_s: list[float] = field(default_factory=list)
    socket_failed: int = 0
    server_fds_max: int = 0
    server_counts: dict = field(default_factory=dict)  # the server's own count (/metrics)


async def attack_slowloris(
    base: str, port: int, slug: str, pid: int, conns: int, addresses: int, seconds: float
) -> SlowlorisResult:
    """`conns` partial requests spread over `addresses` loopback source addresses
    (127.0.0.2, ...), each re-opened as soon as the server closes it, for `seconds`;
    meanwhile an honest phone (`honest_phone`, another process) loads the page and
    opens a socket."""
    result = SlowlorisResult(seconds, addresses)
    stop = time.monotonic() + seconds
    held = 0
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        cookie = await mint(http, slug, "198.51.100.7")

    async def slot(i: int) -> None:
        nonlocal held
        source = f"127.0.0.{2 + i % addresses}"
        while time.monotonic() < stop:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
            except OSError:
                await asyncio.sleep(0.1)
                continue
            opened = time.monotonic()
            result.opened += 1
            held += 1
            result.held_max = max(result.held_max, held)
            writer.write(b"GET /s/demo HTTP/1.1\r\nHost: leitai\r\nUser-Agent: slowloris\r\n")
            try:
                while time.monotonic() < stop:
                    writer.write(b"X-a: b\r\n")  # a header line now and then: never complete
                    try:
                        if await asyncio.wait_for(reader.read(1024), 2) == b"":
                            break
                    except TimeoutError:
                        continue
            except ConnectionError:
                pass
            held -= 1
            lived = time.monotonic() - opened
            if time.monotonic() < stop:
                if lived < 1:
                    result.refused += 1
                    await asyncio.sleep(0.1)
                else:
                    result.timed_out += 1
                    result.lifetimes.append(lived)
            writer.close()

    async def fds() -> None:
        while time.monotonic() < stop:
            with contextlib.suppress(OSError):
                result.server_fds_max = max(result.server_fds_max, len(os.listdir(f"/proc/{pid}/fd")))
            await asyncio.sleep(0.5)

    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(1) as pool:  # the honest phone in a process of its own: the script's loop is busy
        probe = loop.run_in_executor(pool, honest_phone, base, slug, cookie, seconds)
        await asyncio.gather(*(slot(i) for i in range(conns)), fds())
        result.page_s, result.page_failed, result.socket_s, result.socket_failed = await probe
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        text = (await http.get("/metrics")).text
    for m in re.finditer(r'^leitai_connections_closed_total\{reason="(\w+)"\} (\S+)', text, re.M):
        result.server_counts[m.group(1)] = int(float(m.group(2)))
    return result


def honest_phone(base: str, slug: str, cookie: str, seconds: float) -> tuple[list[float], int, list[float], int]:
    """A phone on 127.0.0.250: a page load and a socket to its snapshot, about once a
    second (its device's reconnect budget); the seconds each took and the failures."""
    page_s: list[float] = []
    socket_s: list[float] = []
    failed = {"page": 0, "socket": 0}
    stop = time.monotonic() + seconds

    async def run() -> None:
        local = httpx.AsyncHTTPTransport(local_address="127.0.0.250")
        async with httpx.AsyncClient(base_url=base, transport=local, timeout=10, cookies={"lt_device": cookie}) as http:
            while time.monotonic() < stop:
                t0 = time.monotonic()
                try:
                    r = await http.get(f"/s/{slug}", headers={"Connection": "close"})
                    if r.status_code == 200:
                        page_s.append(time.monotonic() - t0)
                    else:
                        failed["page"] += 1
                except httpx.HTTPError:
                    failed["page"] += 1
                t0 = time.monotonic()
                try:
                    ws = await websockets.connect(
                        base.replace("http", "ws", 1) + f"/ws/audience/{slug}",
                        additional_headers={"Cookie": f"lt_device={cookie}"},
                        local_addr=("127.0.0.250", 0),
                        open_timeout=10,
                    )
                    first = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                    await ws.close()
                    if first.get("type") == "snapshot":
                        socket_s.append(time.monotonic() - t0)
                    else:
                        failed["socket"] += 1
                except Exception:
                    failed["socket"] += 1
                await asyncio.sleep(1.0)

    asyncio.run(run())
    return page_s, failed["page"], socket_s, failed["socket"]


# -- the command line -------------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


async def run(args: argparse.Namespace) -> None:
    env = dict(item.split("=", 1) for item in args.env)
    quick = args.quick
    what = ["votes", "reconnect", "venue", "pages", "slowloris"] if args.what == "all" else [args.what]
    with LocalServer(**env) as srv:
        session = host_session(srv.url)
        for name in what:
            slug = f"{name}-{int(time.time())}"
            create_show(srv.url, session, slug)
            if name == "votes":
                minutes = 0.5 if quick else args.minutes
                r = await attack_votes(srv.url, slug, minutes, honest=10 if quick else 40)
                print(
                    f"votes: {minutes} min from one network: {r.devices} devices "
                    f"(median {pct(r.seconds_per_device, 50):.2f} s of work each, p90 "
                    f"{pct(r.seconds_per_device, 90):.2f} s); {r.voted} voted, {r.counted} counted, {r.held} held "
                    f"{r.held_reasons}; honest phones {r.honest_counted}/{r.honest} counted; "
                    f"the round's counted votes {r.round_votes}",
                    flush=True,
                )
            elif name == "reconnect":
                other = f"honest-{int(time.time())}"
                create_show(srv.url, session, other)
                seconds = 5 if quick else args.seconds
                r2 = await attack_reconnect(srv.url, slug, other, seconds)
                print(
                    f"reconnect: {seconds} s, {r2.connections} connections ({r2.refused} more refused), "
                    f"{r2.like_frames} like frames "
                    f"({r2.like_frames * 50} taps): {r2.likes_counted} likes and {r2.questions} questions counted; "
                    f"one honest socket: {r2.honest_likes_counted} likes and {r2.honest_questions} questions",
                    flush=True,
                )
            elif name == "venue":
                phones = 80 if quick else args.phones
                r3 = await attack_venue(srv.url, slug, phones, 10 if quick else 60)
                print(
                    f"venue: {r3.joined}/{r3.phones} phones joined over {r3.window_s:.1f} s (join p50 "
                    f"{pct(r3.join_s, 50):.2f} s, p99 {pct(r3.join_s, 99):.2f} s); {r3.counted} votes counted",
                    flush=True,
                )
            elif name == "slowloris":
                assert srv.proc is not None
                conns, secs = (600, 15.0) if quick else (args.conns, args.seconds)
                r5 = await attack_slowloris(srv.url, srv.port, slug, srv.proc.pid, conns, args.addresses, secs)
                print(
                    f"slowloris: {conns} partial requests from {r5.addresses} addresses for {secs:.0f} s "
                    f"({r5.opened} opened with re-opens): at most {r5.held_max} open at once, "
                    f"{r5.refused} closed within 1 s, {r5.timed_out} later, after "
                    f"{pct(r5.lifetimes, 50):.1f} s (p50; max {max(r5.lifetimes, default=0):.1f} s); "
                    f"server fds at most {r5.server_fds_max}, the server's count of closed {r5.server_counts}; "
                    f"honest phone: {len(r5.page_s)} pages "
                    f"(p50 {pct(r5.page_s, 50) * 1000:.0f} ms, max {max(r5.page_s, default=0) * 1000:.0f} ms, "
                    f"{r5.page_failed} failed), {len(r5.socket_s)} sockets to a snapshot "
                    f"(p50 {pct(r5.socket_s, 50) * 1000:.0f} ms, max {max(r5.socket_s, default=0) * 1000:.0f} ms, "
                    f"{r5.socket_failed} failed)",
                    flush=True,
                )
            else:
                gets = 200 if quick else args.gets
                codes = await attack_pages(srv.url, slug, gets)
                print(f"pages: {gets} page loads without a device from one address: status codes {codes}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["votes", "reconnect", "venue", "pages", "slowloris", "all"])
    ap.add_argument("--conns", type=int, default=6000)
    ap.add_argument("--addresses", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--phones", type=int, default=800)
    ap.add_argument("--gets", type=int, default=2000)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--env", action="append", default=[], help="a server setting, NAME=VALUE")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
