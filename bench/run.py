"""The coordinator: for every server and every phone count, start the server,
hold the phones (in load-generator processes), send the likes, watch the
overlay, and compute the figures. See docs/performance.md."""

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import orjson
import psutil

from . import report
from .dialect import SIO_CONNECT, SIO_PONG, dialect
from .servers import HOST, HOST_TOKEN, PY, ROOT, Proc, Redis, Server, pinned
from .wire import WSClient, fetch_cookies, post_form, upgrade_request

SERVERS = ("leitai", "websockets", "socketio")


@dataclass
class Options:
    servers: list[str]
    phones: list[int]
    rate: float
    duration: float
    mode: str = "embedded"
    workers: int = 1
    gens: int = 1
    samples: int = 200
    votes_per_s: float = 20.0
    asks_per_s: float = 2.0
    pin: bool = True
    server_cpus: str = "0"
    client_cpus: str = "1"
    out: Path = ROOT / "bench-results"
    chart: Path | None = None
    quick: bool = False
    profile: bool = False
    profile_native: bool = False
    settle_s: float = 10.0
    idle_s: float = 2.0
    keep_going: bool = False
    concurrency: int = 100
    label: str = ""
    server_env: dict = field(default_factory=dict)
    quiet_wait: float = 0.0
    quiet_pct: float = 25.0
    retries: int = 0
    repeat: int = 1
    p99_bound_ms: float = 150.0
    # capacity mode (--capacity)
    capacity: bool = False
    search: bool = True  # capacity mode: search for the most phones (not with --fanout)
    cap_start: int = 2000
    cap_max: int = 0  # 0: as many as the file-descriptor limit allows
    cap_per_phone: float = 1.0  # like frames per second per phone
    cap_resolution: float = 0.1
    cap_step: int = 250
    cap_confirm: int = 1
    fanout_phones: int = 10000
    fanout_rate: float = 100.0


def expected_rates(opts: Options) -> tuple[float, float]:
    """Tallies per second an overlay and a phone get when every tick is on time."""
    tick = float(opts.server_env.get("TICK_MS", 100))
    phone = float(opts.server_env.get("PHONE_TICK_MS", 500))
    return 1000 / tick, 1000 / max(tick, phone)


def on_time(r: dict, opts: Options) -> tuple[bool, list[str]]:
    """Did the server keep up? Every phone held, every like counted, overlays at
    >= 98 % of their tick rate (9.8/s), phones at >= 97.5 % (1.95/s) on average,
    and p99 tap->overlay within the bound (default 150 ms: one and a half ticks)."""
    overlay_rate, phone_rate = expected_rates(opts)
    why = []
    if r.get("held", 0) < r["phones"]:
        why.append(f"held {r.get('held')}/{r['phones']}")
    if not r.get("likes_equal"):
        why.append("likes not all counted")
    if r["overlay_tallies_per_s"] < 0.98 * overlay_rate:
        why.append(f"overlay {r['overlay_tallies_per_s']}/s")
    mean = r["phone_tallies_per_s"]["mean"]
    if mean is None or mean < 0.975 * phone_rate:
        why.append(f"phones {mean}/s")
    p99 = r["tap_to_overlay"]["p99_ms"]
    if p99 is None or p99 > opts.p99_bound_ms:
        why.append(f"p99 {p99} ms")
    return not why, why


# -- the overlay and console, in this process ----------------------------------


class Watcher(WSClient):
    """An overlay or console socket that keeps every tally as (time, likes a, likes b)."""

    def __init__(self, request: bytes, key: bytes, server: str, role: str) -> None:
        super().__init__(request, key)
        self.d = dialect(server)
        self.role = role
        self.tallies: list[tuple[float, int, int]] = []
        self.snapshot_likes: tuple[int, int] | None = None
        self.replies: list[bytes] = []
        loop = asyncio.get_running_loop()
        self.ready = loop.create_future()
        self.lost = loop.create_future()

    def on_text(self, p: bytes) -> None:
        t = time.monotonic()
        d = self.d
        if d.is_tally(p):
            likes = d.tally(p)["likes"]
            self.tallies.append((t, likes["a"], likes["b"]))
            return
        if d.sio:
            if p == b"2":
                self.send_text(SIO_PONG)
                return
            if p[:1] == b"0":
                self.send_text(SIO_CONNECT)
                return
        if d.is_snapshot(p):
            snap = orjson.loads(p[2:])[1] if d.sio else orjson.loads(p)
            likes = snap["show"]["tally"]["likes"]
            self.snapshot_likes = (likes["a"], likes["b"])
            if self.role != "overlay":
                self.send_text(d.hello())
            if not self.ready.done():
                self.ready.set_result(None)
            return
        self.replies.append(p)

    def on_lost(self) -> None:
        if not self.lost.done():
            self.lost.set_result(self.close_code)
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed {self.close_code} {self.status!r}"))

    def likes_now(self) -> tuple[int, int]:
        if self.tallies:
            return self.tallies[-1][1], self.tallies[-1][2]
        return self.snapshot_likes or (0, 0)


async def watch(server: Server, role: str, cookie: str = "") -> Watcher:
    d = dialect(server.kind)
    request = upgrade_request(HOST, server.port, d.path(role, "demo"), cookie)
    _, w = await asyncio.get_running_loop().create_connection(
        lambda: Watcher(request, os.urandom(4), server.kind, role), HOST, server.port
    )
    await asyncio.wait_for(w.ready, 15)
    return w


# -- load generators ---------------------------------------------------------------


class Generator:
    def __init__(self, index: int, cfg: dict, cpus: str | None) -> None:
        self.index = index
        self.cfg = cfg
        self.cpus = cpus
        self.proc: asyncio.subprocess.Process | None = None
        self.events: asyncio.Queue = asyncio.Queue()
        self.watch: Proc | None = None
        self.stderr = b""

    async def start(self) -> None:
        path = Path(self.cfg["result"] + ".cfg.json")
        path.write_text(json.dumps(self.cfg))
        self.proc = await asyncio.create_subprocess_exec(
            *pinned([PY, "-m", "bench.loadgen", str(path)], self.cpus),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=2**22,
        )
        self.watch = Proc(self.proc.pid)
        self.readers = [asyncio.create_task(self._pump()), asyncio.create_task(self._errors())]

    async def _pump(self) -> None:
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                await self.events.put({"event": "exit"})
                return
            try:
                await self.events.put(json.loads(line))
            except ValueError:
                pass

    async def _errors(self) -> None:
        self.stderr = await self.proc.stderr.read()

    async def expect(self, name: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            event = await asyncio.wait_for(self.events.get(), max(0.1, deadline - time.monotonic()))
            if event.get("event") == name:
                return event
            if event.get("event") == "error":
                raise RuntimeError(f"load generator {self.index} failed:\n{event.get('traceback')}")
            if event.get("event") == "exit":
                await asyncio.sleep(0.2)
                raise RuntimeError(f"load generator {self.index} exited:\n{self.stderr.decode()[-3000:]}")

    def command(self, **cmd) -> None:
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())

    async def stop(self) -> None:
        if self.proc.returncode is None:
            try:
                self.command(cmd="quit")
                await asyncio.wait_for(self.proc.wait(), 15)
            except (TimeoutError, ConnectionError):
                self.proc.kill()
                await self.proc.wait()


# -- one measurement -----------------------------------------------------------------


def pct(values, q) -> float | None:
    return None if len(values) == 0 else float(np.percentile(values, q))


def ms(v) -> float | None:
    return None if v is None else round(v * 1000, 1)


def summarise(delays: np.ndarray) -> dict:
    return {
        "n": len(delays),
        "p50_ms": ms(pct(delays, 50)),
        "p90_ms": ms(pct(delays, 90)),
        "p99_ms": ms(pct(delays, 99)),
        "max_ms": ms(float(delays.max())) if len(delays) else None,
        "mean_ms": ms(float(delays.mean())) if len(delays) else None,
    }


def tap_to_overlay(
    frames: list[tuple[np.ndarray, np.ndarray, np.ndarray]], overlay: list, base: tuple[int, int]
) -> tuple[np.ndarray, int]:
    """Per like frame: the time from its send until the first overlay tally whose
    total for that side reaches the cumulative count of everything sent up to it
    (all generators merged by send time). Returns the delays and how many frames
    no tally ever covered."""
    t = np.concatenate([f[0] for f in frames]) if frames else np.zeros(0)
    s = np.concatenate([f[1] for f in frames]) if frames else np.zeros(0, np.uint8)
    c = np.concatenate([f[2] for f in frames]).astype(np.int64) if frames else np.zeros(0, np.int64)
    order = np.argsort(t, kind="stable")
    t, s, c = t[order], s[order], c[order]
    if not overlay:
        return np.zeros(0), len(t)
    o = np.array(overlay, dtype=np.float64)
    ot = o[:, 0]
    out, missing = [], 0
    for side, col in ((0, 1), (1, 2)):
        m = s == side
        if not m.any():
            continue
        cum = np.cumsum(c[m])
        total = np.maximum.accumulate(o[:, col] - base[side])
        idx = np.searchsorted(total, cum, side="left")
        ok = idx < len(ot)
        missing += int((~ok).sum())
        out.append(ot[idx[ok]] - t[m][ok])
    return (np.concatenate(out) if out else np.zeros(0)), missing


def phone_delays(overlay: list, samples: list, t0: float, t1: float) -> tuple[np.ndarray, int]:
    """For each overlay tally inside the window and each sampled phone: the time
    until that phone receives a tally at least as new (likes a + b at least as high)."""
    o = np.array([x for x in overlay if t0 <= x[0] <= t1], dtype=np.float64).reshape(-1, 3)
    if not len(o):
        return np.zeros(0), 0
    ot, ol = o[:, 0], o[:, 1] + o[:, 2]
    out, missing = [], 0
    for rec in samples:
        if not rec:
            missing += len(ot)
            continue
        p = np.array(rec, dtype=np.float64)
        pl = np.maximum.accumulate(p[:, 1])
        idx = np.searchsorted(pl, ol, side="left")
        ok = idx < len(p)
        missing += int((~ok).sum())
        out.append(p[idx[ok], 0] - ot[ok])
    return (np.concatenate(out) if out else np.zeros(0)), missing


async def cpu_now(procs: dict[str, Proc | None]) -> dict[str, float]:
    out = {k: (p.cpu_s() if p is not None else 0.0) for k, p in procs.items()}
    t = psutil.cpu_times()
    out["_system_busy"] = (
        t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0) + getattr(t, "steal", 0)
    )
    out["_self"] = time.process_time()
    return out


def other_cpu_pct(a: dict, b: dict, wall: float) -> float:
    """CPU used during the window by processes that are not part of this benchmark
    (other work on a shared machine), in % of one core."""
    ours = sum(b[k] - a[k] for k in a if not k.startswith("_")) + (b["_self"] - a["_self"])
    return round(max(0.0, 100 * ((b["_system_busy"] - a["_system_busy"]) - ours) / wall), 1)


class Cookies:
    """Device cookies per server kind, fetched with real GETs and reused across points."""

    def __init__(self) -> None:
        self.jar: dict[str, list[str]] = {}

    async def get(self, server: Server, n: int) -> list[str]:
        have = self.jar.setdefault(server.kind, [])
        if len(have) < n:
            started = time.monotonic()
            have += await fetch_cookies(HOST, server.port, "/s/demo", "lt_device", n - len(have))
            print(f"  fetched {n} device cookies in {time.monotonic() - started:.1f}s", flush=True)
        return have[:n]


async def run_point(opts: Options, kind: str, phones: int, cookies: Cookies, redis: Redis | None, work: Path) -> dict:
    result: dict = {
        "server": kind,
        "phones": phones,
        "rate": opts.rate,
        "duration_s": opts.duration,
        "mode": opts.mode if kind == "leitai" else "embedded",
        "workers": opts.workers if kind == "leitai" else 1,
        "gens": opts.gens,
    }
    point_dir = Path(tempfile.mkdtemp(prefix=f"{kind}-{phones}-", dir=work))
    pin = opts.pin
    server = Server(
        kind,
        cpus=opts.server_cpus if pin else None,
        workdir=point_dir,
        redis_url=redis.url if (redis and kind == "leitai") else "",
        workers=opts.workers,
        env=opts.server_env,
    )
    gens: list[Generator] = []
    watchers: list[Watcher] = []
    spy: asyncio.subprocess.Process | None = None
    try:
        await server.start()
        ids = await cookies.get(server, phones)
        console_cookie = ""
        if kind == "leitai":
            status, got = await post_form(HOST, server.port, "/login", f"token={HOST_TOKEN}&next=/shows")
            if "lt_session" not in got:
                raise RuntimeError(f"console sign-in failed: HTTP {status}")
            console_cookie = f"lt_session={got['lt_session']}"
        overlay = await watch(server, "overlay")
        console = await watch(server, "console", console_cookie)
        watchers += [overlay, console]
        d = dialect(kind)
        console.send_text(d.round_start())
        await asyncio.sleep(0.5)
        result["round_started"] = any(d.reply_kind(p) == "ack" for p in console.replies)
        await asyncio.sleep(0.5)
        rss0 = server.watch.rss()

        # generators: phones split evenly, rate split evenly
        n_gens = max(1, min(opts.gens, phones))
        per = [phones // n_gens + (1 if i < phones % n_gens else 0) for i in range(n_gens)]
        start = 0
        samples_each = max(1, opts.samples // n_gens) if opts.samples else 0
        for i, n in enumerate(per):
            base = str(point_dir / f"gen{i}")
            Path(base + ".cookies").write_text("\n".join(ids[start : start + n]) + "\n")
            start += n
            cfg = {
                "server": kind,
                "host": HOST,
                "port": server.port,
                "slug": "demo",
                "index": i,
                "cookies": base + ".cookies",
                "result": base,
                "rate": opts.rate * n / phones,
                "votes_per_s": opts.votes_per_s / n_gens,
                "asks_per_s": opts.asks_per_s / n_gens,
                "samples": samples_each,
                "seed": i + 1,
                "concurrency": opts.concurrency,
                "cookie_name": "lt_device",
            }
            g = Generator(i, cfg, opts.client_cpus if pin else None)
            await g.start()
            gens.append(g)
        connect_timeout = 60 + phones / 50
        t_connect = time.monotonic()
        readies = await asyncio.gather(*(g.expect("ready", connect_timeout) for g in gens))
        result["connect_s"] = round(time.monotonic() - t_connect, 1)
        result["connected"] = sum(r["connected"] for r in readies)
        failures: dict = {}
        for r in readies:
            for k, v in r.get("failures", {}).items():
                failures[k] = failures.get(k, 0) + v
        result["connect_failures"] = failures
        print(
            f"  {result['connected']}/{phones} phones connected in {result['connect_s']}s"
            + (f" (failures: {failures})" if failures else ""),
            flush=True,
        )

        # idle: memory per connected phone, idle CPU
        procs = {"server": server.watch, **{f"gen{g.index}": g.watch for g in gens}}
        if redis is not None and kind == "leitai":
            procs["redis"] = redis.watch
        c0 = await cpu_now(procs)
        w0 = time.monotonic()
        await asyncio.sleep(opts.idle_s)
        c1 = await cpu_now(procs)
        rss1 = server.watch.rss()
        idle_wall = time.monotonic() - w0
        idle_rate = (c1["server"] - c0["server"]) / idle_wall  # CPU-seconds per second, phones idle
        result["server_idle_cpu_pct"] = round(100 * idle_rate, 1)
        result["idle_s"] = round(idle_wall, 1)
        result["other_cpu_idle_pct"] = other_cpu_pct(c0, c1, idle_wall)
        result["rss_before_phones_mib"] = round(rss0 / 2**20, 1)
        result["rss_idle_mib"] = round(rss1 / 2**20, 1)
        result["rss_per_phone_kib"] = (
            round((rss1 - rss0) / max(1, result["connected"]) / 1024, 1) if result["connected"] else None
        )

        # the measured window
        base = overlay.likes_now()
        t0 = time.monotonic() + 0.3
        for g in gens:
            g.command(cmd="go", t0=t0, duration=opts.duration)
        if opts.profile:
            prof = opts.out / f"profile-{opts.label + '-' if opts.label else ''}{kind}-{phones}.txt"
            spy_cmd = [
                str(Path(PY).parent / "py-spy"),
                "record",
                "--pid",
                str(server.proc.pid),
                "--duration",
                str(int(opts.duration)),
                "--rate",
                "200",
                "--nonblocking",
                "--format",
                "raw",
                "-o",
                str(prof),
            ]
            if kind == "leitai" and opts.workers > 1:
                spy_cmd.append("--subprocesses")
            if opts.profile_native:  # py-spy must stop the process for native stacks
                spy_cmd.remove("--nonblocking")
                spy_cmd[spy_cmd.index("--rate") + 1] = "100"
                spy_cmd.append("--native")
            await asyncio.sleep(max(0.0, t0 - time.monotonic()))
            spy = await asyncio.create_subprocess_exec(
                *pinned(spy_cmd, opts.client_cpus if pin else None),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            result["profile"] = str(prof)
            procs["pyspy"] = Proc(spy.pid)
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        ca = await cpu_now(procs)
        sys_a = server.watch.sys_s()
        own_a = time.process_time()
        wa = time.monotonic()
        await asyncio.sleep(max(0.0, t0 + opts.duration - time.monotonic()))
        cb = await cpu_now(procs)
        sys_b = server.watch.sys_s()
        own_b = time.process_time()
        wall = time.monotonic() - wa
        result["rss_load_mib"] = round(server.watch.rss() / 2**20, 1)
        cpu_s = cb["server"] - ca["server"]
        result["server_cpu_pct"] = round(100 * cpu_s / wall, 1)
        result["server_sys_cpu_pct"] = round(100 * (sys_b - sys_a) / wall, 1)
        result["gen_cpu_pct"] = [round(100 * (cb[k] - ca[k]) / wall, 1) for k in procs if k.startswith("gen")]
        result["coordinator_cpu_pct"] = round(100 * (own_b - own_a) / wall, 1)
        result["other_cpu_pct"] = other_cpu_pct(ca, cb, wall)
        if "redis" in procs:
            result["redis_cpu_pct"] = round(100 * (cb["redis"] - ca["redis"]) / wall, 1)

        sents = await asyncio.gather(*(g.expect("sent", opts.duration + 30) for g in gens))
        sent = {"a": sum(s["likes"]["a"] for s in sents), "b": sum(s["likes"]["b"] for s in sents)}
        result["frames_sent"] = sum(s["frames"] for s in sents)
        result["gen_longest_batch_ms"] = max(s["longest_batch_ms"] for s in sents)
        deadline = time.monotonic() + opts.settle_s
        while time.monotonic() < deadline:
            a, b = overlay.likes_now()
            if a - base[0] >= sent["a"] and b - base[1] >= sent["b"]:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.7)  # let the phones' next (500 ms) tally arrive
        if spy is not None:
            _, err = await spy.communicate()
            if spy.returncode:
                result["profile_error"] = err.decode()[-500:]
                result.pop("profile", None)
        for g in gens:
            g.command(cmd="report")
        reports = await asyncio.gather(*(g.expect("report", 60) for g in gens))

        # figures
        a, b = overlay.likes_now()
        counted = {"a": a - base[0], "b": b - base[1]}
        result["likes_sent"] = sent
        result["likes_counted"] = counted
        result["likes_equal"] = counted == sent
        frames, tallies, samples = [], [], []
        held, lost, replies, windows = 0, {}, {}, []
        for r in reports:
            basepath = r["path"][: -len(".json")]
            data = orjson.loads(Path(r["path"]).read_bytes())
            frames.append(
                (
                    np.fromfile(basepath + ".t", dtype=np.float64),
                    np.fromfile(basepath + ".s", dtype=np.uint8),
                    np.fromfile(basepath + ".c", dtype=np.uint8),
                )
            )
            tallies += data["tallies"]
            samples += data["samples"]
            held += data["held"]
            windows.append(data["window"])
            for k, v in data["lost"].items():
                lost[k] = lost.get(k, 0) + v
            for k, v in data["replies"].items():
                replies[k] = replies.get(k, 0) + v
            result["votes_sent"] = result.get("votes_sent", 0) + data["votes"]
            result["asks_sent"] = result.get("asks_sent", 0) + data["asks"]
        result["held"] = held
        result["lost"] = lost
        result["replies"] = replies
        result["overlay_lost"] = overlay.lost.done()
        delays, missing = tap_to_overlay(frames, overlay.tallies, base)
        result["tap_to_overlay"] = {**summarise(delays), "missing": missing}
        t1 = t0 + opts.duration
        in_window = [x for x in overlay.tallies if t0 <= x[0] < t1]
        result["overlay_tallies_per_s"] = round(len(in_window) / opts.duration, 2)
        gaps = np.diff(np.array([x[0] for x in in_window])) if len(in_window) > 1 else np.zeros(0)
        result["overlay_gap_ms"] = {
            "p50": ms(pct(gaps, 50)),
            "p99": ms(pct(gaps, 99)),
            "max": ms(float(gaps.max())) if len(gaps) else None,
        }
        result["console_tallies_per_s"] = round(len([x for x in console.tallies if t0 <= x[0] < t1]) / opts.duration, 2)
        per_phone = np.array(tallies, dtype=np.float64) / opts.duration
        result["phone_tallies_per_s"] = {
            "mean": round(float(per_phone.mean()), 2) if len(per_phone) else None,
            "min": round(float(per_phone.min()), 2) if len(per_phone) else None,
            "p1": round(pct(per_phone, 1), 2) if len(per_phone) else None,
        }
        # deliveries: tally frames the server wrote and the clients received inside the window
        screens = len(in_window) + len([x for x in console.tallies if t0 <= x[0] < t1])
        total = int(sum(tallies)) + screens
        net = cpu_s - idle_rate * wall  # less what the same phones cost idle (pings, timers)
        result["deliveries"] = {"phones": int(sum(tallies)), "screens": screens, "total": total}
        result["deliveries_per_s"] = round(total / opts.duration, 1)
        result["frames_in_per_s"] = round(result["frames_sent"] / opts.duration, 1)
        result["server_cpu_s"] = round(cpu_s, 3)
        result["cpu_us_per_delivery"] = round(1e6 * cpu_s / total, 2) if total else None
        result["deliveries_per_cpu_s"] = round(total / cpu_s) if cpu_s > 0 else None
        result["deliveries_per_net_cpu_s"] = round(total / net) if net > 0 and total else None
        pdel, pmiss = phone_delays(overlay.tallies, samples, t0, t1)
        result["overlay_to_phone"] = {**summarise(pdel), "missing": pmiss, "phones_sampled": len(samples)}
        result["server_drops_logged"] = server.drops
        if lost or server.errors or server.drops:
            result["server_log_tail"] = list(server.log)[-40:]
        result["server_errors_logged"] = server.errors
        result["on_time"], result["why_not_on_time"] = on_time(result, opts)
        if result.get("profile"):
            result["profile_top"] = report.profile_summary(Path(result["profile"]))
        return result
    finally:
        for w in watchers:
            w.close()
        await asyncio.gather(*(g.stop() for g in gens), return_exceptions=True)
        if spy is not None and spy.returncode is None:
            spy.kill()
        await server.stop()
        shutil.rmtree(point_dir, ignore_errors=True)


# -- the whole run ---------------------------------------------------------------


async def wait_quiet(limit_pct: float, timeout: float, need_s: int = 3) -> dict:
    """Wait (up to `timeout` s) until other work on this machine uses less than
    `limit_pct` % of one core for `need_s` seconds in a row: the box is shared."""
    started = time.monotonic()
    quiet = 0
    last = None
    while True:
        a = psutil.cpu_times()
        own_a = time.process_time()
        await asyncio.sleep(1.0)
        b = psutil.cpu_times()
        own_b = time.process_time()
        busy = sum(getattr(b, f, 0) - getattr(a, f, 0) for f in ("user", "nice", "system", "irq", "softirq", "steal"))
        last = round(100 * (busy - (own_b - own_a)), 1)
        quiet = quiet + 1 if last < limit_pct else 0
        waited = time.monotonic() - started
        if quiet >= need_s or waited >= timeout:
            return {"waited_s": round(waited, 1), "other_cpu_pct_before": last, "quiet": quiet >= need_s}


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in (
        "websockets",
        "python-socketio",
        "python-engineio",
        "uvicorn",
        "uvloop",
        "httptools",
        "orjson",
        "starlette",
        "redis",
    ):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:
            pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "server"], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip()
        )
    except OSError:
        commit, dirty = "", False
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "commit": commit + ("+dirty(server/)" if dirty else ""),
        "redis": (
            subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
            if shutil.which("redis-server")
            else ""
        ),
    }


async def measure(opts: Options, kind: str, phones: int, cookies: Cookies, redis: Redis | None, work: Path) -> dict:
    """One point, on a quiet machine if it can be had: a point whose window other work
    disturbed is run again (up to `retries` times) and the least disturbed kept."""
    best = None
    for attempt in range(1 + opts.retries):
        quiet = None
        if opts.quiet_wait > 0:
            quiet = await wait_quiet(opts.quiet_pct, opts.quiet_wait)
            if quiet["waited_s"] > 5 or not quiet["quiet"]:
                print(
                    f"  waited {quiet['waited_s']}s for the machine to be quiet "
                    f"(other load now {quiet['other_cpu_pct_before']}% of a core)",
                    flush=True,
                )
        try:
            r = await run_point(opts, kind, phones, cookies, redis, work)
        except Exception as exc:
            import traceback

            r = {
                "server": kind,
                "phones": phones,
                "error": f"{type(exc).__name__}: {exc}"[:2000],
                "traceback": traceback.format_exc()[-3000:],
            }
            print(r["traceback"], flush=True)
        r["attempt"] = attempt + 1
        r["load_avg"] = [round(x, 2) for x in os.getloadavg()]
        if quiet is not None:
            r["quiet_wait"] = quiet
        disturbed = r.get("other_cpu_pct", 0) > opts.quiet_pct * 2
        r["disturbed"] = disturbed
        if (
            best is None
            or ("error" in best and "error" not in r)
            or ("error" not in r and r.get("other_cpu_pct", 0) < best.get("other_cpu_pct", 0))
        ):
            best = r  # the least disturbed attempt
        if not disturbed:
            break
        print(
            f"  other work used {r.get('other_cpu_pct')}% of a core during the window: "
            f"{'trying again' if attempt < opts.retries else 'keeping it, marked disturbed'}",
            flush=True,
        )
    assert best is not None
    if "error" in best:
        print(f"  failed: {best['error'][:500]}", flush=True)
    else:
        print("  " + report.one_line(best), flush=True)
    return best


def _title(opts: Options, kind: str, phones: int, redis: Redis | None, extra: str = "") -> str:
    return f"\n== {kind}, {phones} phones, {opts.rate:g} like-frames/s for {opts.duration:g}s{extra}" + (
        f", Redis mode, {opts.workers} process(es)" if kind == "leitai" and redis else ""
    )


async def sweep(opts: Options, cookies: Cookies, redis: Redis | None, work: Path) -> list[dict]:
    """Every phone count, `repeat` times, the servers interleaved (so a disturbance
    of the shared machine falls on all of them alike)."""
    results: list[dict] = []
    failed: set[str] = set()
    for phones in opts.phones:
        for rep in range(opts.repeat):
            for kind in opts.servers:
                if kind in failed and not opts.keep_going:
                    results.append({"server": kind, "phones": phones, "skipped": "could not hold fewer phones"})
                    print(f"\n== {kind}, {phones} phones: skipped (it could not hold fewer)", flush=True)
                    continue
                run = f", run {rep + 1}/{opts.repeat}" if opts.repeat > 1 else ""
                print(_title(opts, kind, phones, redis, run), flush=True)
                r = await measure(opts, kind, phones, cookies, redis, work)
                r["rep"] = rep + 1
                results.append(r)
                if "error" in r or r.get("held", 0) < 0.95 * phones:
                    failed.add(kind)
    return results


def gens_for(opts: Options, phones: int) -> int:
    """One generator holds at most ~18,000 sockets (the file-descriptor limit)."""
    return max(opts.gens, -(-phones // 18000))


def fd_cap() -> int:
    """The most phones one server process can hold here: its file-descriptor limit
    (inherited from this process), less some for its own files."""
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(1000, (soft - 500) // 250 * 250)


async def fanout_probe(opts: Options, cookies: Cookies, redis: Redis | None, work: Path) -> list[dict]:
    """Fan-out cost: `fanout_phones` phones, a small like rate (`fanout_rate`, enough
    to change the tally every tick), no votes or questions, so the server's work is
    almost all the tick and its writes. The idle window is as long as the load
    window, to take off what the same phones cost idle (pings, timers)."""
    n = opts.fanout_phones
    fo = replace(
        opts,
        rate=opts.fanout_rate,
        votes_per_s=0.0,
        asks_per_s=0.0,
        idle_s=opts.duration,
        gens=gens_for(opts, n),
    )
    results = []
    for rep in range(opts.repeat):
        for kind in opts.servers:
            print(_title(fo, kind, n, redis, f", fan-out probe, run {rep + 1}/{opts.repeat}"), flush=True)
            r = await measure(fo, kind, n, cookies, redis, work)
            r["probe"] = "fanout"
            r["rep"] = rep + 1
            results.append(r)
    return results


def _round(n: float, step: int) -> int:
    return max(step, round(n / step) * step)


async def capacity_search(
    opts: Options, kind: str, cookies: Cookies, redis: Redis | None, work: Path
) -> tuple[dict, list[dict]]:
    """The most phones this server sustains on its core with every tick on time
    (`on_time`), at `cap_per_phone` like frames per second per phone: double from
    `cap_start` until a count fails (or halve until one passes), then bisect until
    the gap is within `cap_resolution` of the count (or `cap_step`). A failing count
    is run again (`cap_confirm` times) before it counts as failed: the machine is
    shared, and a disturbance can only make a server look slower."""
    cap = opts.cap_max or fd_cap()
    lo, hi = 0, None
    lo_r: dict | None = None
    probes: list[dict] = []
    tried: set[int] = set()
    n = min(opts.cap_start, cap)
    while n not in tried:
        tried.add(n)
        po = replace(opts, rate=n * opts.cap_per_phone, gens=gens_for(opts, n))
        r: dict = {}
        for attempt in range(1 + opts.cap_confirm):
            confirm = f", capacity probe{' (again)' if attempt else ''}"
            print(_title(po, kind, n, redis, confirm), flush=True)
            r = await measure(po, kind, n, cookies, redis, work)
            r["probe"] = "capacity"
            probes.append(r)
            if r.get("on_time"):
                break
            print(f"  not on time: {', '.join(r.get('why_not_on_time') or [r.get('error', '?')[:120]])}", flush=True)
        if r.get("on_time"):
            lo, lo_r = n, r
        else:
            hi = n
        if hi is None:
            n = min(cap, n * 2)
        elif lo == 0:
            n = _round(hi / 2, opts.cap_step) if hi > opts.cap_step else hi
        elif hi - lo <= max(opts.cap_step, opts.cap_resolution * lo):
            break
        else:
            n = _round((lo + hi) / 2, opts.cap_step)
    summary = {
        "server": kind,
        "phones": lo,
        "first_failed": hi,
        "limit": cap,
        "capped": hi is None,  # passed at the file-descriptor cap: the real figure is higher
        "probes": len(probes),
        # probes that other work on the machine disturbed: their verdict says little
        "disturbed_probes": sum(1 for p in probes if p.get("disturbed")),
    }
    if lo_r is not None:
        summary.update(
            {
                "frames_in_per_s": lo_r["frames_in_per_s"],
                "deliveries_per_s": lo_r["deliveries_per_s"],
                "server_cpu_pct": lo_r["server_cpu_pct"],
                "cpu_us_per_delivery": lo_r["cpu_us_per_delivery"],
                "p99_ms": lo_r["tap_to_overlay"]["p99_ms"],
                "overlay_tallies_per_s": lo_r["overlay_tallies_per_s"],
                "phone_tallies_per_s": lo_r["phone_tallies_per_s"]["mean"],
                "rss_per_phone_kib": lo_r["rss_per_phone_kib"],
            }
        )
    failed = next((p for p in reversed(probes) if p["phones"] == hi), None)
    if failed is not None:
        summary["why_failed"] = failed.get("why_not_on_time") or [failed.get("error", "?")[:200]]
    return summary, probes


async def run_all(opts: Options) -> dict:
    opts.out.mkdir(parents=True, exist_ok=True)
    if opts.pin:
        try:
            os.sched_setaffinity(0, {int(c) for c in _cpus(opts.client_cpus)})
        except (OSError, ValueError):
            pass
    work = Path(tempfile.mkdtemp(prefix="leitai-bench-"))
    redis = None
    started = time.time()
    load_before = [round(x, 2) for x in os.getloadavg()]
    results: list[dict] = []
    capacity: list[dict] = []
    cookies = Cookies()
    try:
        if opts.mode == "redis" and "leitai" in opts.servers:
            redis = await Redis(opts.client_cpus if opts.pin else None).start()
        if opts.capacity:
            if opts.fanout_phones:
                results += await fanout_probe(opts, cookies, redis, work)
            for kind in opts.servers if opts.search else ():
                summary, probes = await capacity_search(opts, kind, cookies, redis, work)
                capacity.append(summary)
                results += probes
        else:
            results += await sweep(opts, cookies, redis, work)
    finally:
        if redis is not None:
            await redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "label": opts.label,
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "command": " ".join(sys.argv),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in opts.__dict__.items()},
        "machine": machine(),
        "load_avg_before": load_before,
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "results": results,
        "capacity": capacity,
    }


def _cpus(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out += range(int(lo), int(hi) + 1)
        elif part:
            out.append(int(part))
    return out


def parse(argv: list[str] | None = None) -> Options:
    ap = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Leitai benchmark: phones, likes, tap->overlay delay, against a raw `websockets` "
        "server and python-socketio. See docs/performance.md.",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="one small point per server, finishes in under a minute (defaults: 1000 phones, 2000 frames/s, 5 s)",
    )
    ap.add_argument(
        "--servers", default=",".join(SERVERS), help="comma list of leitai,websockets,socketio (default: all three)"
    )
    ap.add_argument("--phones", default=None, help="phone counts to sweep, comma list (default 1000,2500,5000,10000)")
    ap.add_argument("--rate", type=float, default=None, help="like frames per second over all phones (default 10000)")
    ap.add_argument("--duration", type=float, default=None, help="seconds of load per point (default 20)")
    ap.add_argument(
        "--mode",
        choices=("embedded", "redis"),
        default="embedded",
        help="Leitai's mode; redis starts a throwaway redis-server on a free port",
    )
    ap.add_argument("--workers", type=int, default=1, help="Leitai server processes (Redis mode)")
    ap.add_argument("--gens", type=int, default=1, help="load-generator processes")
    ap.add_argument("--samples", type=int, default=200, help="phones that record every tally (for delays)")
    ap.add_argument("--votes-per-s", type=float, default=20.0)
    ap.add_argument("--asks-per-s", type=float, default=2.0)
    ap.add_argument("--no-pin", action="store_true", help="do not pin processes to cores with taskset")
    ap.add_argument("--server-cpus", default="0", help="cores for the server (taskset -c), default 0")
    ap.add_argument(
        "--client-cpus", default="1", help="cores for the generators, this coordinator, Redis and py-spy; default 1"
    )
    ap.add_argument("--out", default=str(ROOT / "bench-results"), help="directory for the JSON results")
    ap.add_argument(
        "--chart",
        default=None,
        help="PNG chart path (default docs/perf-p99.png; in quick mode bench-results/perf-p99-quick.png)",
    )
    ap.add_argument("--no-chart", action="store_true")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="py-spy each server during each window (raw stacks in --out, top entries in the JSON)",
    )
    ap.add_argument("--profile-native", action="store_true", help="with --profile: include native (C) frames")
    ap.add_argument("--settle", type=float, default=10.0, help="seconds to wait for the last likes to show")
    ap.add_argument(
        "--keep-going", action="store_true", help="try larger phone counts even after a server failed to hold fewer"
    )
    ap.add_argument("--concurrency", type=int, default=100, help="phones connecting at once, per generator")
    ap.add_argument("--label", default="", help="a name for this run, kept in the JSON")
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        help="before each point wait up to this many seconds for other work on the machine "
        "to drop below --quiet-pct (default 180; 0 in quick mode)",
    )
    ap.add_argument(
        "--quiet-pct",
        type=float,
        default=25.0,
        help="'quiet' means other processes use less than this %% of one core (default 25)",
    )
    ap.add_argument(
        "--retries",
        type=int,
        default=None,
        help="re-run a point whose window other work disturbed (other CPU > 2x --quiet-pct), "
        "this many times (default 2; 0 in quick mode)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run every point this many times, the servers interleaved; the report gives medians and min-max",
    )
    ap.add_argument(
        "--p99-bound",
        type=float,
        default=150.0,
        help="'every tick on time' needs p99 tap->overlay within this many ms (default 150)",
    )
    cap = ap.add_argument_group("capacity mode")
    cap.add_argument(
        "--capacity",
        action="store_true",
        help="for each server: a fan-out probe (deliveries per CPU-second, memory per idle phone), then the most "
        "phones its core sustains with every tick on time, found by doubling and bisection (docs/performance.md)",
    )
    cap.add_argument(
        "--fanout", action="store_true", help="only the fan-out probe of capacity mode (no search for the most phones)"
    )
    cap.add_argument("--cap-start", type=int, default=2000, help="first phone count of the search (default 2000)")
    cap.add_argument(
        "--cap-max", type=int, default=0, help="largest phone count tried (default: what the fd limit allows)"
    )
    cap.add_argument(
        "--cap-per-phone", type=float, default=1.0, help="like frames/s per phone in the search (default 1.0)"
    )
    cap.add_argument(
        "--cap-resolution", type=float, default=0.1, help="stop bisecting when the gap is within this share (0.1)"
    )
    cap.add_argument("--cap-step", type=int, default=250, help="phone counts are multiples of this (250)")
    cap.add_argument(
        "--cap-confirm", type=int, default=1, help="run a failing count again this many times before it fails (1)"
    )
    cap.add_argument(
        "--fanout-phones", type=int, default=10000, help="phones in the fan-out probe (default 10000; 0: no probe)"
    )
    cap.add_argument(
        "--fanout-rate", type=float, default=100.0, help="like frames/s in the fan-out probe (default 100)"
    )
    ap.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the server (repeatable), e.g. PHONE_TICK_MS=250",
    )
    a = ap.parse_args(argv)
    servers = [s.strip() for s in a.servers.split(",") if s.strip()]
    for s in servers:
        if s not in SERVERS:
            ap.error(f"unknown server {s!r}; choose from {', '.join(SERVERS)}")
    if a.quick:
        phones = [1000]
        rate, duration = 2000.0, 5.0
        idle, settle = 1.0, 5.0
    elif a.capacity or a.fanout:
        phones = []
        rate, duration = 0.0, 10.0
        idle, settle = 2.0, a.settle
    else:
        phones = [1000, 2500, 5000, 10000]
        rate, duration = 10000.0, 20.0
        idle, settle = 2.0, a.settle
    if a.phones:
        phones = [int(x) for x in a.phones.split(",") if x.strip()]
    rate = a.rate if a.rate is not None else rate
    duration = a.duration if a.duration is not None else duration
    if a.capacity and a.cap_per_phone > 20:
        ap.error("a device may send at most 20 like frames per second")
    for n in phones:
        if rate / n > 20:
            ap.error(f"{rate:g} frames/s over {n} phones is {rate / n:g} per phone; a device may send at most 20")
    if a.no_chart or a.capacity or a.fanout:
        chart = None
    elif a.chart:
        chart = Path(a.chart)
    else:
        chart = Path(a.out) / "perf-p99-quick.png" if a.quick else ROOT / "docs" / "perf-p99.png"
    env = {}
    for item in a.server_env:
        k, _, v = item.partition("=")
        env[k] = v
    return Options(
        servers=servers,
        phones=phones,
        rate=rate,
        duration=duration,
        mode=a.mode,
        workers=a.workers,
        gens=a.gens,
        samples=a.samples,
        votes_per_s=a.votes_per_s,
        asks_per_s=a.asks_per_s,
        pin=not a.no_pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) > 1,
        server_cpus=a.server_cpus,
        client_cpus=a.client_cpus,
        out=Path(a.out),
        chart=chart,
        quick=a.quick,
        profile=a.profile or a.profile_native,
        profile_native=a.profile_native,
        settle_s=settle,
        idle_s=idle,
        keep_going=a.keep_going,
        concurrency=a.concurrency,
        label=a.label,
        server_env=env,
        quiet_wait=a.quiet_wait if a.quiet_wait is not None else (0.0 if a.quick else 180.0),
        quiet_pct=a.quiet_pct,
        retries=a.retries if a.retries is not None else (0 if a.quick else 2),
        repeat=max(1, a.repeat),
        p99_bound_ms=a.p99_bound,
        capacity=a.capacity or a.fanout,
        search=not a.fanout,
        cap_start=a.cap_start,
        cap_max=a.cap_max,
        cap_per_phone=a.cap_per_phone,
        cap_resolution=a.cap_resolution,
        cap_step=a.cap_step,
        cap_confirm=a.cap_confirm,
        fanout_phones=a.fanout_phones,
        fanout_rate=a.fanout_rate,
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    try:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    try:
        import uvloop

        data = uvloop.run(run_all(opts))
    except ImportError:  # pragma: no cover
        data = asyncio.run(run_all(opts))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = opts.out / f"bench-{stamp}{('-' + opts.label) if opts.label else ''}.json"
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    (opts.out / "latest.json").write_bytes(path.read_bytes())
    print()
    print(report.table(data))
    for part in (report.spreads(data), report.ratios(data), report.fanout(data), report.capacity(data)):
        if part:
            print()
            print(part)
    print()
    print(report.targets(data))
    print(f"\nJSON: {path}")
    if opts.chart is not None:
        try:
            report.chart(data, opts.chart)
            print(f"chart: {opts.chart}")
        except Exception as exc:  # the figures matter more than the picture
            print(f"chart failed: {exc}")
    # an overloaded capacity probe may still have likes queued: that is its verdict, not a failure
    ok = all(r.get("likes_equal") for r in data["results"] if r["server"] == "leitai" and r.get("probe") != "capacity")
    return 0 if ok else 1
