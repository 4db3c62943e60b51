"""Shared fixtures: a real Leitai server in a subprocess, real WebSocket clients."""

import asyncio
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest
import websockets

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "test-host-token"
_slugs = itertools.count(1)


class Server:
    """`python -m server` on a free port (PORT=0, read back from its log)."""

    def __init__(self, data_dir: str | None = None, **env: str) -> None:
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="leitai-test-")
        # Tests pay a token proof of work per device and may vote at once; the tests of
        # those rules set them back to their defaults (test_integrity.py).
        self.env = {
            **os.environ,
            "PORT": "0",
            "HOST": "127.0.0.1",
            "DATA_DIR": self.data_dir,
            "HOST_TOKEN": TOKEN,
            "SECRET_KEY": "test-secret",
            "LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1",
            "DEVICE_POW_COST": "1",
            "DEVICE_MINT_RATE": "1000",
            "VOTE_MIN_WATCH_S": "0",
            **env,
        }
        self.env.pop("REDIS_URL", None) if "REDIS_URL" not in env else None
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log: list[str] = []

    def start(self, timeout: float = 20) -> "Server":
        self.log = []
        self.port = int(self.env["PORT"])  # 0: read back from the log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        found = threading.Event()
        workers = int(self.env.get("WORKERS", "1"))
        started = 0

        def pump() -> None:
            nonlocal started
            for line in self.proc.stdout:
                self.log.append(line)
                m = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
                if m and m.group(1) != "0":
                    self.port = int(m.group(1))
                if "Application startup complete" in line:
                    started += 1
                if self.port and started >= workers:
                    found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(timeout):
            self.kill()
            raise RuntimeError("server did not start:\n" + "".join(self.log))
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else 0

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def cleanup(self) -> None:
        self.stop()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def server():
    srv = Server().start()
    yield srv
    srv.cleanup()


@pytest.fixture
def fresh_server():
    servers: list[Server] = []

    def make(**kw) -> Server:
        srv = Server(**kw)
        servers.append(srv)
        return srv.start()

    yield make
    for srv in servers:
        srv.cleanup()


# -- HTTP helpers ---------------------------------------------------------------


def host_cookies(base: str) -> dict[str, str]:
    with httpx.Client(base_url=base) as http:
        r = http.post("/login", data={"token": TOKEN, "next": "/shows"}, follow_redirects=False)
        assert r.status_code == 303, r.text
        return {"lt_session": r.cookies["lt_session"]}


def solve(challenge: dict) -> str:
    """The page's proof of work, done the same way in Python (ALTCHA)."""
    import altcha

    ch = altcha.Challenge.from_dict(challenge)
    return altcha.Payload(ch, altcha.solve_challenge(ch)).to_base64()


def device_cookie(base: str, slug: str, headers: dict | None = None, previous: str = "") -> str:
    """A device as a phone gets one: with the page on a venue network, else by
    solving the proof of work the page would solve."""
    return new_device(base, slug, headers, previous)[0]


def new_device(base: str, slug: str, headers: dict | None = None, previous: str = "") -> tuple[str, str]:
    """(cookie, memory token) of a new device."""
    with httpx.Client(base_url=base, headers=headers or {}) as http:
        r = http.get(f"/s/{slug}")
        assert r.status_code == 200, r.status_code
        if "lt_device" in r.cookies:
            return r.cookies["lt_device"], ""
        challenge = http.get("/api/device/challenge").json()
        payload = solve(challenge)
        while True:
            r = http.post("/api/device", json={"payload": payload, "previous": previous})
            if r.status_code != 429:
                break
            time.sleep(r.json()["retry_ms"] / 1000)  # as the page does: wait, then again
        assert r.status_code == 200, r.text
        return r.cookies["lt_device"], r.json()["memory"]


def overlay_key(base: str, slug: str) -> str:
    r = httpx.get(f"{base}/api/shows/{slug}/overlay-url", cookies=host_cookies(base))
    assert r.status_code == 200, r.text
    return r.json()["key"]


def create_show(base: str, slug: str | None = None, **fields) -> str:
    slug = slug or f"t{os.getpid()}-{next(_slugs)}"
    body = {
        "slug": slug,
        "title": fields.pop("title", "测试节目"),
        "status": "live",
        "sides": {
            "a": {"name": "红方", "guest": "王伟", "org": "澳洋医院", "color": "#d7263d"},
            "b": {"name": "蓝方", "guest": "杨玭", "org": "公益组织联合会", "color": "#1b6fd1"},
        },
        **fields,
    }
    with httpx.Client(base_url=base, cookies=host_cookies(base)) as http:
        r = http.post("/api/shows", json=body)
        assert r.status_code == 201, r.text
    return slug


@pytest.fixture
def show(server) -> str:
    """A new show on the shared server, so tests do not see each other's state."""
    return create_show(server.url)


# -- WebSocket client -----------------------------------------------------------


class Client:
    """A real WebSocket client that keeps every frame and can await one."""

    def __init__(self, ws, role: str) -> None:
        self.ws = ws
        self.role = role
        self.frames: list[dict] = []
        self._ids = itertools.count(1)
        self._page = os.urandom(3).hex()  # like a page load: ids never repeat across clients
        self._cond = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())
        self.close_code: int | None = None

    @classmethod
    async def connect(
        cls,
        base_ws: str,
        role: str,
        slug: str,
        cookie: str = "",
        origin: str | None = None,
        headers: dict | None = None,
        query: str = "",
        **kw,
    ) -> "Client":
        headers = dict(headers or {})
        if cookie:
            headers["Cookie"] = cookie
        if origin:
            headers["Origin"] = origin
        ws = await websockets.connect(
            f"{base_ws}/ws/{role}/{slug}" + (f"?{query}" if query else ""),
            additional_headers=headers,
            compression=None,
            max_size=2**22,
            **kw,
        )
        return cls(ws, role)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = orjson.loads(raw)
                async with self._cond:
                    self.frames.append(frame)
                    self._cond.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            async with self._cond:
                self._cond.notify_all()

    async def wait_for(self, pred, timeout: float = 5.0, start: int = 0) -> dict:
        """The first frame (from index `start`) matching `pred`, waiting for it if needed."""

        async def find():
            async with self._cond:
                while True:
                    for frame in self.frames[start:]:
                        if pred(frame):
                            return frame
                    if self._reader.done():
                        raise ConnectionError(f"closed ({self.close_code}) before a matching frame")
                    await self._cond.wait()

        return await asyncio.wait_for(find(), timeout)

    async def wait_type(self, kind: str, timeout: float = 5.0, start: int = 0) -> dict:
        return await self.wait_for(lambda f: f.get("type") == kind, timeout, start)

    async def snapshot(self) -> dict:
        return await self.wait_type("snapshot")

    async def send(self, msg: dict | str | bytes) -> None:
        await self.ws.send(msg if isinstance(msg, (str, bytes)) else orjson.dumps(msg).decode())

    async def request(self, msg: dict, timeout: float = 5.0) -> dict:
        """Send with a fresh id; return its ack or error frame."""
        msg = {**msg, "id": msg.get("id") or f"m{next(self._ids)}-{self._page}"}
        await self.send(msg)
        return await self.wait_for(lambda f: f.get("id") == msg["id"] and f["type"] in ("ack", "error"), timeout)

    async def closed(self, timeout: float = 5.0) -> int | None:
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.close_code

    async def close(self) -> None:
        await self.ws.close()
        await self._reader

    def last_tally(self) -> dict | None:
        tallies = [f for f in self.frames if f["type"] == "tally"]
        if tallies:
            return tallies[-1]
        snaps = [f for f in self.frames if f["type"] == "snapshot"]
        return snaps[-1]["show"]["tally"] if snaps else None


class Clients:
    """Makes clients of each role against one server and closes them after the test."""

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        self.made: list[Client] = []
        self._host: str | None = None

    async def audience(self, slug: str, cookie: str | None = None) -> Client:
        cookie = cookie or device_cookie(self.srv.url, slug)
        c = await Client.connect(self.srv.ws_url, "audience", slug, f"lt_device={cookie}")
        self.made.append(c)
        await c.snapshot()
        await c.send({"type": "hello"})  # as the page does
        return c

    async def overlay(self, slug: str, keyed: bool = True) -> Client:
        """An overlay, by default on the show's keyed address (as OBS would be): one of
        the studio's screens. Unkeyed overlays are capped per address."""
        query = f"key={overlay_key(self.srv.url, slug)}" if keyed else ""
        c = await Client.connect(self.srv.ws_url, "overlay", slug, query=query)
        self.made.append(c)
        await c.snapshot()
        return c

    async def console(self, slug: str, own_session: bool = False) -> Client:
        """A console; with `own_session`, signed in afresh (another moderator)."""
        if self._host is None:
            self._host = host_cookies(self.srv.url)["lt_session"]
        session = host_cookies(self.srv.url)["lt_session"] if own_session else self._host
        c = await Client.connect(self.srv.ws_url, "console", slug, f"lt_session={session}")
        self.made.append(c)
        await c.snapshot()
        await c.send({"type": "hello"})
        return c

    async def close(self) -> None:
        for c in self.made:
            try:
                await asyncio.wait_for(c.close(), 2)
            except Exception:
                pass


@pytest.fixture
async def clients(server):
    made = Clients(server)
    yield made
    await made.close()


async def wait_until(check, timeout: float = 5.0, interval: float = 0.02):
    """Poll a condition that has no event to await (e.g. another process's state)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


# -- Redis ---------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throwaway redis-server on a free port, with AOF, that a test may kill."""

    def __init__(self, aof: bool = True) -> None:
        self.aof = aof
        self.dir = tempfile.mkdtemp(prefix="leitai-redis-")
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.aof else "no",
                "--appendfsync",
                "always",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> "RedisServer":
        """kill -9, then start again on the same port from the same AOF."""
        self.kill()
        return self.start()

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def redis_available() -> str | None:
    """None if tests can start a redis-server here, else the reason they skip."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed"
    return None


def need_redis() -> None:
    reason = redis_available()
    if reason:
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail(f"REQUIRE_REDIS=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_server():
    need_redis()
    srv = RedisServer().start()
    yield srv
    srv.cleanup()


@pytest.fixture
def own_redis():
    """A redis-server of the test's own, for tests that kill it."""
    need_redis()
    made: list[RedisServer] = []

    def make(aof: bool = True) -> RedisServer:
        srv = RedisServer(aof)
        made.append(srv)
        return srv.start()

    yield make
    for srv in made:
        srv.cleanup()


# -- browser --------------------------------------------------------------------------


@pytest.fixture
async def browser():
    from browser import ARGS, CHROMIUM, need_browser

    need_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        await b.close()


@pytest.fixture(scope="session")
def shots_dir():
    path = Path(os.environ.get("SHOTS_DIR") or tempfile.mkdtemp(prefix="leitai-shots-"))
    path.mkdir(parents=True, exist_ok=True)
    return path
