"""A soak: one show at a steady load for a long time, watched every minute.

    scripts/soak --mode embedded --phones 3000 --minutes 60
    scripts/soak --mode redis --workers 2 --phones 2000 --minutes 60

Loopback only, bounded in time. Starts the server (and, in Redis mode, a
throwaway `redis-server` with AOF on, in a temporary folder), holds the phones
in load-generator processes (`bench.loadgen`), and for the whole run sends
like frames at `--rate`, votes at `--votes` per second, a question every
`--ask-every` seconds, and swaps `--churn` phones for new devices every
`--churn-every` seconds. Every minute it prints the server's RSS (all its
processes, and each worker's), its open descriptors, the store's size (the
SQLite files; or Redis's used memory, keys and AOF size), and the latency of a
probe phone's votes (send -> ack, p50/p99 over the minute) and the longest gap
between two overlay tallies. At the end: the RSS slope after the warm-up
(least squares, MiB/h), the growth after the warm-up, the 4-hour extrapolation,
every like counted, and how many new sockets got anything but their snapshot
first. `--json PATH` writes every sample.
"""

import argparse
import asyncio
import itertools
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
import psutil

from .dialect import dialect
from .memprobe import SITECUSTOMIZE, dump
from .run import Cookies, Generator, Watcher, watch
from .servers import HOST, HOST_TOKEN, Proc, Redis, Server
from .wire import WSClient, post_form, upgrade_request

MIB = 2**20


class Probe(WSClient):
    """A phone that votes every second and times each vote's reply."""

    def __init__(self, request: bytes) -> None:
        super().__init__(request, os.urandom(4))
        self.sent: dict[str, float] = {}
        self.delays: list[float] = []
        self.errors = 0
        self.ready = asyncio.get_running_loop().create_future()
        self.n = 0

    def on_text(self, p: bytes) -> None:
        if p[:40].find(b'"snapshot"') >= 0:
            self.send_text(b'{"type":"hello"}')
            if not self.ready.done():
                self.ready.set_result(None)
            return
        if b'"ack"' in p[:24] or b'"error"' in p[:24]:
            msg = orjson.loads(p)
            t = self.sent.pop(str(msg.get("id")), None)
            if t is not None:
                self.delays.append(time.monotonic() - t)
            if msg.get("type") == "error":
                self.errors += 1

    def on_lost(self) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"probe closed {self.close_code}"))

    def vote(self) -> None:
        self.n += 1
        vid = f"p{self.n}"
        self.sent[vid] = time.monotonic()
        side = "a" if self.n % 2 else "b"
        self.send_text(orjson.dumps({"type": "vote", "side": side, "id": vid}))


async def redis_info(port: int) -> dict[str, int]:
    """used_memory, keys and aof_current_size of the soak's Redis (raw RESP, no client library)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        out: dict[str, int] = {}
        for cmd in (b"INFO memory\r\n", b"INFO persistence\r\n", b"DBSIZE\r\n"):
            writer.write(cmd)
            head = await reader.readline()
            if head.startswith(b"$"):
                body = await reader.readexactly(int(head[1:]) + 2)
                for line in body.decode().splitlines():
                    k, _, v = line.partition(":")
                    if k in ("used_memory", "aof_current_size", "aof_base_size", "aof_rewrites"):
                        out[k] = int(v)
            elif head.startswith(b":"):
                out["keys"] = int(head[1:])
        return out
    finally:
        writer.close()


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def fds(proc: Proc) -> int:
    n = 0
    for p in proc.procs():
        try:
            n += p.num_fds()
        except psutil.Error:
            pass
    return n


def worker_rss(proc: Proc) -> list[float]:
    """RSS (MiB) of each process serving sockets (the workers; the one process in embedded mode)."""
    ps = proc.procs()
    leaves = [p for p in ps if not any(q.ppid() == p.pid for q in ps)]
    out = []
    for p in leaves if len(ps) > 1 else ps:
        try:
            if "resource_tracker" in " ".join(p.cmdline()):
                continue
            out.append(round(p.memory_info().rss / MIB, 1))
        except psutil.Error:
            pass
    return out


def rss_parts(proc: Proc) -> dict[str, float]:
    """Where a worker's RSS is (MiB), from /proc/PID/smaps: the main heap (`[heap]`: glibc's
    main arena, small mallocs of the main thread), glibc's thread arenas (anonymous maps
    starting at 64 MiB boundaries: other threads' mallocs), other anonymous maps
    (pymalloc's 1 MiB arenas, which the kernel merges when adjacent, mallocs over the
    mmap threshold, stacks) and files (code, libraries). Summed over the workers: what
    grows says which allocator holds it."""
    parts = {"heap": 0.0, "thread_arenas": 0.0, "anon": 0.0, "files": 0.0}
    ps = proc.procs()
    leaves = [p for p in ps if not any(q.ppid() == p.pid for q in ps)] if len(ps) > 1 else ps
    for p in leaves:
        try:
            text = Path(f"/proc/{p.pid}/smaps").read_text()
        except OSError:
            continue
        kind, size = "anon", 0
        for line in text.splitlines():
            head = line.split(maxsplit=6)
            if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                size, name = hi - lo, head[5] if len(head) > 5 else ""
                if name == "[heap]":
                    kind = "heap"
                elif name.startswith("/"):
                    kind = "files"
                elif name:
                    kind = "anon"
                elif size <= 64 * MIB and lo % (64 * MIB) == 0:
                    kind = "thread_arenas"
                else:
                    kind = "anon"
            elif head[0] == "Rss:":
                parts[kind] += int(head[1]) / 1024
    return {k: round(v, 1) for k, v in parts.items()}


def slope_mib_per_h(ts: list[float], rss: list[float]) -> float:
    if len(ts) < 2:
        return 0.0
    k, _ = np.polyfit(np.array(ts) / 3600, np.array(rss), 1)
    return float(k)


async def soak(a: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    redis: Redis | None = None
    if a.mode == "redis":
        redis = await Redis(None, aof_dir=work).start()
    env = {"TICK_MS": "100", **dict(kv.split("=", 1) for kv in a.server_env)}
    out_dump = str(work / "dump")
    if a.trace or a.collect:  # a dump after the warm-up and one at the end (bench.memprobe's)
        site = work / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
        root = Path(__file__).resolve().parent.parent
        env.update(PYTHONPATH=f"{site}:{root}", MEMPROBE_OUT=out_dump)
        if a.trace:  # tracemalloc in the server
            env.update(MEMPROBE_TRACE="1", MEMPROBE_FRAMES="3")
        if a.collect:  # a full garbage collection before each dump (and its cost)
            env.update(MEMPROBE_COLLECT="1")
    dumps: list[dict] = []
    server = Server("leitai", cpus=None, workdir=work, redis_url=redis.url if redis else "", workers=a.workers, env=env)
    gens: list[Generator] = []
    samples: list[dict] = []
    out: dict = {"command": "scripts/soak " + shlex.join(sys.argv[1:]), "args": vars(a), "samples": samples}
    try:
        await server.start()
        churns = int(a.minutes * 60 // a.churn_every) if a.churn else 0
        t = time.monotonic()
        cookies = await Cookies().get(server, a.phones + a.churn * churns + 1)
        print(f"{len(cookies)} device cookies in {time.monotonic() - t:.0f} s", flush=True)
        probe_cookie, pool, spare = cookies[0], cookies[1 : a.phones + 1], cookies[a.phones + 1 :]
        _status, got = await post_form(HOST, server.port, "/login", f"token={HOST_TOKEN}&next=/shows")
        console = await watch(server, "console", f"lt_session={got['lt_session']}")
        overlay: Watcher = await watch(server, "overlay")
        d = dialect("leitai")
        console.send_text(
            orjson.dumps({"type": "round.start", "topic": "soak", "duration_s": int(a.minutes * 60 + 600), "id": "r1"})
        )
        n_gens = max(1, a.gens)
        per = [a.phones // n_gens + (1 if i < a.phones % n_gens else 0) for i in range(n_gens)]
        start = 0
        for i, n in enumerate(per):
            base = str(work / f"gen{i}")
            Path(base + ".cookies").write_text("\n".join(pool[start : start + n]) + "\n")
            start += n
            cfg = {
                "server": "leitai",
                "host": HOST,
                "port": server.port,
                "slug": "demo",
                "index": i,
                "cookies": base + ".cookies",
                "result": base,
                "rate": a.rate * n / a.phones,
                "votes_per_s": a.votes / n_gens,
                "asks_per_s": (1 / a.ask_every if a.ask_every else 0) / n_gens,
                "samples": 0,
                "seed": i + 1,
                "concurrency": 50,
                "cookie_name": "lt_device",
                "interval_s": 0.02,
            }
            g = Generator(i, cfg, None)
            await g.start()
            if a.nice:
                for p in g.watch.procs():
                    p.nice(a.nice)
            gens.append(g)
        readies = await asyncio.gather(*(g.expect("ready", 120 + a.phones / 20) for g in gens))
        connected = sum(r["connected"] for r in readies)
        print(f"{connected}/{a.phones} phones connected", flush=True)
        loop = asyncio.get_running_loop()
        _, probe = await loop.create_connection(
            lambda: Probe(upgrade_request(HOST, server.port, d.path("audience", "demo"), f"lt_device={probe_cookie}")),
            HOST,
            server.port,
        )
        await asyncio.wait_for(probe.ready, 30)
        base_likes = overlay.likes_now()
        duration = a.minutes * 60
        t0 = time.monotonic() + 0.5
        for g in gens:
            g.command(cmd="go", t0=t0, duration=duration)
        print(
            "  min    rss MiB  (workers)        fds  store               vote p50/p99 ms  tally gap max ms",
            flush=True,
        )
        next_churn = t0 + a.churn_every
        next_sample = t0 + 60
        mark = 0
        while True:
            now = time.monotonic()
            if now >= t0 + duration:
                break
            probe.vote()
            if a.churn and now >= next_churn and spare:
                batch, spare = spare[: a.churn], spare[a.churn :]
                parts = [batch[i::n_gens] for i in range(n_gens)]
                for g, part in zip(gens, parts, strict=True):
                    g.command(cmd="churn", cookies=part)
                next_churn += a.churn_every
            if (a.trace or a.collect) and not dumps and now >= t0 + a.warmup * 60:
                dumps.append(await dump(server, out_dump, 1))
            if now >= next_sample:
                next_sample += 60
                delays = np.array(probe.delays) * 1000
                probe.delays = []
                ticks = [x[0] for x in overlay.tallies[mark:]]
                mark = len(overlay.tallies)
                gap = float(np.max(np.diff(ticks))) * 1000 if len(ticks) > 1 else None
                sample: dict = {
                    "t_s": round(now - t0, 1),
                    "rss_mib": round(server.watch.rss() / MIB, 1),
                    "workers_mib": worker_rss(server.watch),
                    "fds": fds(server.watch),
                    "rss_parts_mib": rss_parts(server.watch),
                    "vote_p50_ms": round(float(np.percentile(delays, 50)), 1) if len(delays) else None,
                    "vote_p99_ms": round(float(np.percentile(delays, 99)), 1) if len(delays) else None,
                    "vote_errors": probe.errors,
                    "tally_gap_max_ms": round(gap, 1) if gap else None,
                    "overlay_tallies": len(overlay.tallies),
                    "load1": round(os.getloadavg()[0], 1),  # the machine's: other work shares it
                }
                if redis is not None:
                    info = await redis_info(redis.port)
                    sample["redis_used_mib"] = round(info.get("used_memory", 0) / MIB, 1)
                    sample["redis_keys"] = info.get("keys", 0)
                    sample["aof_mib"] = round(info.get("aof_current_size", 0) / MIB, 2)
                    sample["redis_rss_mib"] = round(redis.watch.rss() / MIB, 1)
                    store = f"redis {sample['redis_used_mib']} MiB {sample['redis_keys']} keys aof {sample['aof_mib']}"
                else:
                    sample["store_mib"] = round(folder_bytes(work / "data") / MIB, 2)
                    store = f"sqlite {sample['store_mib']} MiB"
                overlay.tallies = overlay.tallies[-1:]  # keep the memory of the soak itself flat
                mark = len(overlay.tallies)
                samples.append(sample)
                print(
                    f"  {sample['t_s'] / 60:4.0f}  {sample['rss_mib']:7.1f}  {sample['workers_mib']!s:16}"
                    f" {sample['fds']:5d}  {store:30}  {sample['vote_p50_ms']}/{sample['vote_p99_ms']}"
                    f"  {sample['tally_gap_max_ms']}  load {sample['load1']}",
                    flush=True,
                )
                if a.json:
                    Path(a.json).write_text(json.dumps(out, indent=1))
            await asyncio.sleep(1.0)
        if (a.trace or a.collect) and dumps:
            out["growth"] = growth(dumps[0], await dump(server, out_dump, 2), out_dump)
            print(json.dumps(out["growth"], indent=1), flush=True)
        # the end: every like counted?
        sent = {"a": 0, "b": 0}
        first_bad = churned = 0
        for g in gens:
            ev = await g.expect("sent", 120)
            sent["a"] += ev["likes"]["a"]
            sent["b"] += ev["likes"]["b"]
        for g in gens:
            g.command(cmd="report")
            rep = await g.expect("report", 120)
            r = orjson.loads(Path(rep["path"]).read_bytes())
            first_bad += r["first_not_snapshot"]
            churned += r["churned"]
        want = (base_likes[0] + sent["a"], base_likes[1] + sent["b"])
        deadline = time.monotonic() + 10
        while overlay.likes_now() != want and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        warm = [s for s in samples if s["t_s"] >= a.warmup * 60 - 1]
        ts = [s["t_s"] for s in warm]
        rss = [s["rss_mib"] for s in warm]
        k = slope_mib_per_h(ts, rss)
        out["result"] = {
            "minutes": a.minutes,
            "likes_sent": sent,
            "likes_counted": overlay.likes_now(),
            "likes_equal": overlay.likes_now() == want,
            "churned": churned,
            "first_frame_not_snapshot": first_bad,
            "server_errors_logged": server.errors,
            "drops_logged": server.drops,
            "rss_after_warmup_mib": rss[0] if rss else None,
            "rss_end_mib": rss[-1] if rss else None,
            "growth_after_warmup_mib": round(rss[-1] - rss[0], 1) if rss else None,
            "slope_mib_per_h": round(k, 2),
            "extrapolated_4h_growth_mib": round(k * (4 - a.warmup / 60), 1),
        }
        if samples and len(samples[-1]["workers_mib"]) > 1:
            per_worker = list(zip(*[s["workers_mib"] for s in warm], strict=False))
            out["result"]["worker_slopes_mib_per_h"] = [round(slope_mib_per_h(ts, list(w)), 2) for w in per_worker]
        if redis is not None and len(samples) > 1:
            hours = (samples[-1]["t_s"] - samples[0]["t_s"]) / 3600
            written = 0.0  # a rewrite shrinks the file: count what was appended, minute by minute
            for before, after in itertools.pairwise(samples):
                grew = after["aof_mib"] - before["aof_mib"]
                written += grew if grew >= 0 else after["aof_mib"]
            out["result"]["aof_mib_per_h"] = round(written / hours, 1)
        print(json.dumps(out["result"], indent=1), flush=True)
        if a.json:
            Path(a.json).write_text(json.dumps(out, indent=1))
        return out
    finally:
        for g in gens:
            await g.stop()
        await server.stop()
        if redis is not None:
            await redis.stop()
        shutil.rmtree(work, ignore_errors=True)


def growth(before: dict, after: dict, base: str) -> dict:
    """What grew between two dumps: object counts by type, traced bytes by source line."""
    import tracemalloc

    types = []
    for name, c in after["counts"].items():
        dc = c - before["counts"].get(name, 0)
        ds = after["sizes"][name] - before["sizes"].get(name, 0)
        if ds > 0:
            types.append((name, dc, ds))
    types.sort(key=lambda x: -x[2])
    lines = []
    if "traced" in after:
        s1 = tracemalloc.Snapshot.load(f"{base}.1.snap")
        s2 = tracemalloc.Snapshot.load(f"{base}.2.snap")
        for st in s2.compare_to(s1, "traceback")[:20]:
            if st.size_diff > 0:
                where = " <- ".join(str(f).replace(str(Path.home()), "~") for f in st.traceback)
                lines.append([where, round(st.size_diff / 1024, 1), st.count_diff])
    return {
        "rss_mib": round((after["rss"] - before["rss"]) / MIB, 1),
        "traced_mib": round((after.get("traced", 0) - before.get("traced", 0)) / MIB, 2),
        "collected": [before.get("collected"), after.get("collected")],
        "gc_ms": [before.get("gc_ms"), after.get("gc_ms")],
        "tracked": [before.get("tracked"), after.get("tracked")],
        "types": [[n, c, s] for n, c, s in types[:20]],
        "lines_kib": lines,
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/soak", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mode", choices=("embedded", "redis"), default="embedded")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--phones", type=int, default=3000)
    p.add_argument("--rate", type=float, default=300.0, help="like frames per second (all phones)")
    p.add_argument("--votes", type=float, default=5.0, help="votes per second (all phones)")
    p.add_argument("--ask-every", type=float, default=5.0, help="a question every N seconds (0: none)")
    p.add_argument("--churn", type=int, default=100, help="phones swapped for new devices each time")
    p.add_argument("--churn-every", type=float, default=120.0, help="seconds between swaps")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--warmup", type=float, default=10.0, help="minutes left out of the slope")
    p.add_argument("--gens", type=int, default=1, help="load-generator processes")
    p.add_argument("--nice", type=int, default=0, help="niceness of the load generators")
    p.add_argument("--json", default="", help="write every sample here")
    p.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE", help="for the server")
    p.add_argument("--trace", action="store_true", help="tracemalloc in the server: what grew after the warm-up")
    p.add_argument("--collect", action="store_true", help="a full gc.collect() before each dump: garbage, and its cost")
    a = p.parse_args(argv)
    if a.minutes > 8 * 60:
        p.error("a soak is bounded: at most 8 hours")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    out = asyncio.run(soak(a))
    r = out.get("result", {})
    return 0 if r.get("likes_equal") and not r.get("first_frame_not_snapshot") else 1


if __name__ == "__main__":
    sys.exit(main())
