"""One load-generator process: holds a share of the phones and sends their likes.

    python -m bench.loadgen CONFIG.json

The coordinator (`python -m bench`) starts one or more of these. Protocol on
stdin/stdout, one JSON object per line:

    -> {"event": "ready", "connected": n, "failed": n, ...}     after connecting
    <- {"cmd": "go", "t0": <monotonic>, "duration": s}          send from t0 for s
    -> {"event": "sent", "likes": {"a": n, "b": n}, ...}        after sending
    <- {"cmd": "report"}                                        write the results
    -> {"event": "report", "path": "..."}
    <- {"cmd": "quit"}

Every like frame's send time (time.monotonic, which is system-wide on Linux, so
comparable with the coordinator's overlay clock), side and count go to
`<result>.t/.s/.c` (float64, uint8, uint8). A sample of phones keep every
tally they receive as (time, likes a + b); every phone counts the tallies it
received inside the measuring window.
"""

import asyncio
import json
import os
import random
import resource
import sys
import time
from array import array
from collections import Counter
from collections.abc import Coroutine
from typing import Any

import orjson

from .dialect import SIO_CONNECT, SIO_PONG, dialect
from .wire import WSClient, client_frame, upgrade_request


class Phone(WSClient):
    __slots__ = ("gen", "ready", "samples", "seen", "tallies", "waiter")

    def __init__(self, gen: "Gen", request: bytes, sample: bool) -> None:
        super().__init__(request, gen.key)
        self.gen = gen
        self.ready = False
        self.seen = False  # any text frame yet (the first must be the snapshot)
        self.tallies = 0
        self.samples: list | None = [] if sample else None
        self.waiter: asyncio.Future | None = None

    def on_text(self, p: bytes) -> None:
        g = self.gen
        if not self.seen and not (g.sio and (len(p) <= 2 or p[:1] == b"0")):
            self.seen = True
            if not g.is_snapshot(p):
                g.first_not_snapshot += 1
        if g.is_tally(p):
            if g.measuring:
                self.tallies += 1
            if self.samples is not None:
                likes = g.tally(p)["likes"]
                self.samples.append((time.monotonic(), likes["a"] + likes["b"]))
            return
        if g.sio and len(p) <= 2:
            if p == b"2":  # engine.io ping
                self.send_text(SIO_PONG)
            return
        if self.ready:
            kind = g.reply_kind(p)
            if kind:
                g.replies[kind] += 1
            return
        if g.sio and p[:1] == b"0":  # engine.io open: join the default namespace
            self.send_text(SIO_CONNECT)
            return
        if g.is_snapshot(p):
            self.ready = True
            self.send_raw(g.hello)
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(True)

    def on_lost(self) -> None:
        g = self.gen
        if self.ready:
            g.lost[self.close_code or 1006] += 1
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(False)


class Gen:
    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg
        d = self.dialect = dialect(cfg["server"])
        self.sio = d.sio
        self.is_tally, self.is_snapshot, self.tally, self.reply_kind = (
            d.is_tally,
            d.is_snapshot,
            d.tally,
            d.reply_kind,
        )
        self.key = os.urandom(4)
        self.hello = client_frame(d.hello(), self.key)
        self.phones: list[Phone] = []
        self.measuring = False
        self.replies: Counter = Counter()
        self.lost: Counter = Counter()
        self.failures: Counter = Counter()
        self.rng = random.Random(cfg.get("seed", 1))
        self.times = array("d")
        self.sides = array("B")
        self.counts = array("B")
        self.sent = {"a": 0, "b": 0}
        self.votes = self.asks = 0
        self.cpu = 0.0
        self.window = (0.0, 0.0)
        self.late_ms = 0.0
        self.first_not_snapshot = 0  # sockets whose first frame was not their snapshot
        self.churned = 0

    def emit(self, **event) -> None:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    # -- connecting ------------------------------------------------------------

    async def connect_all(self) -> None:
        cfg = self.cfg
        with open(cfg["cookies"]) as f:
            cookies = [line.strip() for line in f if line.strip()]
        k = max(0, min(cfg.get("samples", 0), len(cookies)))
        sampled = {int(i * len(cookies) / k) for i in range(k)} if k else set()
        sem = asyncio.Semaphore(cfg.get("concurrency", 100))

        def one(i: int, cookie: str) -> Coroutine[Any, Any, Phone | None]:
            return self._open(cookie, i in sampled, sem)

        started = time.monotonic()
        results = await asyncio.gather(*(one(i, c) for i, c in enumerate(cookies)))
        self.phones = [p for p in results if p is not None]
        self.emit(
            event="ready",
            connected=len(self.phones),
            failed=len(cookies) - len(self.phones),
            failures=dict(self.failures),
            connect_s=round(time.monotonic() - started, 2),
        )

    async def _open(self, cookie: str, sample: bool, sem: asyncio.Semaphore) -> Phone | None:
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        host, port = cfg["host"], cfg["port"]
        path = self.dialect.path("audience", cfg.get("slug", "demo"))
        name = cfg.get("cookie_name", "lt_device")
        request = upgrade_request(host, port, path, f"{name}={cookie}")
        reason = "?"
        for attempt in range(4):
            phone = None
            async with sem:
                try:
                    _, phone = await asyncio.wait_for(
                        loop.create_connection(lambda: Phone(self, request, sample), host, port), 15
                    )
                    phone.waiter = loop.create_future()
                    if phone.ready:
                        phone.waiter.set_result(True)
                    if await asyncio.wait_for(phone.waiter, 30):
                        phone.waiter = None
                        return phone
                    reason = f"closed {phone.close_code} {phone.status.decode(errors='replace')}"
                except (TimeoutError, OSError) as exc:
                    reason = type(exc).__name__
                if phone is not None:
                    phone.waiter = None
                    phone.close()
            await asyncio.sleep(0.25 * (attempt + 1))
        self.failures[reason] += 1
        return None

    async def churn(self, cookies: list[str]) -> None:
        """Swap phones: close len(cookies) of them (at random) and open as many new
        devices in their places (the sender keeps writing to whatever is in a place)."""
        sem = asyncio.Semaphore(self.cfg.get("concurrency", 100))
        places = self.rng.sample(range(len(self.phones)), min(len(cookies), len(self.phones)))
        for i in places:
            self.phones[i].close()
        fresh = await asyncio.gather(*(self._open(c, False, sem) for c in cookies[: len(places)]))
        opened = 0
        for i, phone in zip(places, fresh, strict=True):
            if phone is not None:
                self.phones[i] = phone
                opened += 1
        self.churned += opened
        self.emit(event="churned", closed=len(places), opened=opened, first_not_snapshot=self.first_not_snapshot)

    # -- sending ---------------------------------------------------------------

    async def send(self, t0: float, duration: float) -> None:
        cfg = self.cfg
        rate = float(cfg["rate"])
        vote_rate = float(cfg.get("votes_per_s", 0))
        ask_rate = float(cfg.get("asks_per_s", 0))
        d = self.dialect
        key = self.key
        frames = {(s, c): client_frame(d.like(s, c), key) for s in "ab" for c in range(1, 51)}
        max_count = int(cfg.get("max_count", 10))
        plan = [(("a" if self.rng.random() < 0.55 else "b"), self.rng.randint(1, max_count)) for _ in range(4093)]
        plan_frames = [frames[x] for x in plan]
        plan_side = [0 if s == "a" else 1 for s, _ in plan]
        plan_count = [c for _, c in plan]
        phones = self.phones
        nphones = len(phones)
        if not nphones:
            return
        times, sides, counts = self.times, self.sides, self.counts
        sent_a = sent_b = 0
        n = 0  # like frames sent
        j = 0  # position in the plan
        rr = 0  # round-robin over phones
        votes = asks = 0
        ask_phone = 0
        end = t0 + duration
        interval = float(cfg.get("interval_s", 0.005))
        mono = time.monotonic
        await asyncio.sleep(max(0.0, t0 - mono()))
        self.measuring = True
        cpu0 = time.process_time()
        late = 0.0
        while True:
            now = mono()
            if now >= end:
                break
            elapsed = now - t0
            due = int(elapsed * rate) - n
            for _ in range(due):
                for _try in range(8):  # skip phones that closed
                    phone = phones[rr]
                    rr += 1
                    if rr == nphones:
                        rr = 0
                    if not phone.closed and not phone.transport.is_closing():
                        break
                else:
                    continue  # not counted as sent
                phone.transport.write(plan_frames[j])
                times.append(now)
                sides.append(plan_side[j])
                counts.append(plan_count[j])
                if plan_side[j]:
                    sent_b += plan_count[j]
                else:
                    sent_a += plan_count[j]
                j += 1
                if j == 4093:
                    j = 0
            n += max(due, 0)  # frames skipped above (no open phone found) are still due: never re-sent
            while votes < int(elapsed * vote_rate):
                votes += 1
                phone = phones[self.rng.randrange(nphones)]
                phone.send_text(d.vote("a" if self.rng.random() < 0.5 else "b", votes))
            while asks < int(elapsed * ask_rate):
                asks += 1
                phone = phones[ask_phone]
                ask_phone = (ask_phone + 1) % nphones
                phone.send_text(d.ask(f"bench question {cfg.get('index', 0)}-{asks}", asks))
            after = mono()
            late = max(late, after - now)
            await asyncio.sleep(interval)
        self.cpu = time.process_time() - cpu0
        self.window = (t0, mono())
        self.measuring = False
        self.late_ms = late * 1000
        self.sent = {"a": sent_a, "b": sent_b}
        self.votes, self.asks = votes, asks
        self.emit(
            event="sent",
            likes=self.sent,
            frames=len(times),
            votes=votes,
            asks=asks,
            cpu_pct=round(100 * self.cpu / max(1e-9, self.window[1] - t0), 1),
            longest_batch_ms=round(self.late_ms, 2),
        )

    # -- results ---------------------------------------------------------------

    def report(self) -> None:
        base = self.cfg["result"]
        with open(base + ".t", "wb") as f:
            self.times.tofile(f)
        with open(base + ".s", "wb") as f:
            self.sides.tofile(f)
        with open(base + ".c", "wb") as f:
            self.counts.tofile(f)
        held = sum(1 for p in self.phones if p.ready and not p.closed)
        out = {
            "connected": len(self.phones),
            "held": held,
            "lost": {str(k): v for k, v in self.lost.items()},
            "failures": dict(self.failures),
            "sent": self.sent,
            "frames": len(self.times),
            "votes": self.votes,
            "asks": self.asks,
            "replies": dict(self.replies),
            "first_not_snapshot": self.first_not_snapshot,
            "churned": self.churned,
            "window": self.window,
            "cpu_s": self.cpu,
            "tallies": [p.tallies for p in self.phones],
            "samples": [p.samples for p in self.phones if p.samples is not None],
        }
        with open(base + ".json", "wb") as f:
            f.write(orjson.dumps(out))
        self.emit(event="report", path=base + ".json", held=held)

    async def guard(self, coro) -> None:
        try:
            await coro
        except Exception:
            import traceback

            self.emit(event="error", traceback=traceback.format_exc())
            raise

    async def run(self) -> None:
        await self.connect_all()
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        sender: asyncio.Task | None = None
        churning: set[asyncio.Task] = set()
        while True:
            line = await reader.readline()
            if not line:
                break
            cmd = json.loads(line)
            if cmd["cmd"] == "go":
                sender = asyncio.create_task(self.guard(self.send(cmd["t0"], cmd["duration"])))
            elif cmd["cmd"] == "churn":
                churning.add(asyncio.create_task(self.guard(self.churn(cmd["cookies"]))))
            elif cmd["cmd"] == "report":
                if sender is not None:
                    await sender
                self.report()
            elif cmd["cmd"] == "quit":
                break
        for p in self.phones:
            p.close()
        await asyncio.sleep(0.2)


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    raise_nofile()
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(Gen(cfg).run())


if __name__ == "__main__":
    main()
