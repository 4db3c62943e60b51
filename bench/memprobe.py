"""Where the memory of an idle phone goes, for any of the three servers.

    python -m bench.memprobe [--servers leitai,websockets,socketio] [--phones 5000] [--trace]

Starts the server with a `sitecustomize` (from a temporary folder on its
PYTHONPATH) that, on SIGUSR1, writes what the process holds: RSS, the objects
the garbage collector tracks (by type: count and `sys.getsizeof`; objects frozen
at start-up are not in `gc.get_objects()`, so this is what came after), and with
`--trace` a `tracemalloc` snapshot (the server then runs with tracemalloc on,
slower and bigger, but the difference between two snapshots is exact for
Python's allocators). It takes one dump before the phones connect and one with
the phones idle, and prints the difference per phone: by type, and by the
allocating source line.
"""

import argparse
import asyncio
import json
import os
import signal
import tempfile
import time
import tracemalloc
from pathlib import Path

from .run import Cookies, Generator, watch
from .servers import HOST, Server

SITECUSTOMIZE = """
import gc, json, os, signal, sys, tracemalloc
_out = os.environ.get("MEMPROBE_OUT")
if os.environ.get("MEMPROBE_ALSO"):  # an experiment's own sitecustomize, run first
    import runpy
    runpy.run_path(os.path.join(os.environ["MEMPROBE_ALSO"], "sitecustomize.py"))
if _out:
    if os.environ.get("MEMPROBE_TRACE"):
        tracemalloc.start(int(os.environ.get("MEMPROBE_FRAMES", "1")))
    _n = [0]
    def _dump(signum, frame):
        _n[0] += 1
        base = f"{_out}.{_n[0]}"
        collected = gc_ms = None
        if os.environ.get("MEMPROBE_COLLECT"):  # a full collection first: what is garbage, and its cost
            import time
            t = time.perf_counter()
            collected = gc.collect()
            gc_ms = (time.perf_counter() - t) * 1000
        counts, sizes = {}, {}
        for o in gc.get_objects():
            t = type(o)
            name = f"{t.__module__}.{t.__qualname__}"
            counts[name] = counts.get(name, 0) + 1
            sizes[name] = sizes.get(name, 0) + sys.getsizeof(o)
        with open(f"/proc/{os.getpid()}/statm") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        info = {"rss": rss, "counts": counts, "sizes": sizes, "gc_counts": gc.get_count(),
                "frozen": gc.get_freeze_count(), "collected": collected, "gc_ms": gc_ms,
                "tracked": len(gc.get_objects())}
        if tracemalloc.is_tracing():
            tracemalloc.take_snapshot().dump(base + ".snap")
            info["traced"] = tracemalloc.get_traced_memory()[0]
        with open(base + ".json", "w") as f:
            json.dump(info, f)
    signal.signal(signal.SIGUSR1, _dump)
"""


async def dump(server: Server, out: str, n: int) -> dict:
    os.kill(server.proc.pid, signal.SIGUSR1)
    path = Path(f"{out}.{n}.json")
    for _ in range(300):  # the handler runs at the server's next Python bytecode (a tick: 100 ms)
        if path.exists():
            await asyncio.sleep(0.3)  # let it finish writing
            return json.loads(path.read_text())
        await asyncio.sleep(0.1)
    raise RuntimeError("no memory dump from the server")


async def probe(kind: str, phones: int, trace: bool, work: Path, idle_s: float, also: str = "") -> dict:
    site = work / f"site-{kind}"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    out = str(work / f"dump-{kind}")
    env = {"PYTHONPATH": f"{site}:{Path(__file__).resolve().parent.parent}", "MEMPROBE_OUT": out}
    if trace:
        env["MEMPROBE_TRACE"] = "1"
    if also:
        env["MEMPROBE_ALSO"] = str(Path(also).resolve())
    server = Server(kind, cpus=None, workdir=work / kind, env=env)
    gen = None
    try:
        await server.start()
        ids = await Cookies().get(server, phones)
        await watch(server, "overlay")
        await asyncio.sleep(1.0)
        before = await dump(server, out, 1)
        (work / f"{kind}.cookies").write_text("\n".join(ids) + "\n")
        cfg = {
            "server": kind,
            "host": HOST,
            "port": server.port,
            "slug": "demo",
            "index": 0,
            "cookies": str(work / f"{kind}.cookies"),
            "result": str(work / f"{kind}-gen"),
            "rate": 0,
            "samples": 0,
            "seed": 1,
            "concurrency": 100,
            "cookie_name": "lt_device",
        }
        gen = Generator(0, cfg, None)
        await gen.start()
        ready = await gen.expect("ready", 60 + phones / 50)
        await asyncio.sleep(idle_s)
        after = await dump(server, out, 2)
        n = ready["connected"]
        result = {"server": kind, "phones": n, "rss_kib_per_phone": (after["rss"] - before["rss"]) / n / 1024}
        types = []
        for name, c in after["counts"].items():
            dc = c - before["counts"].get(name, 0)
            ds = after["sizes"][name] - before["sizes"].get(name, 0)
            if ds > 0:
                types.append((name, dc / n, ds / n))
        types.sort(key=lambda x: -x[2])
        result["gc_tracked_bytes_per_phone"] = sum(x[2] for x in types)
        result["types"] = [[name, round(c, 2), round(s)] for name, c, s in types[:25]]
        if trace:
            s1 = tracemalloc.Snapshot.load(f"{out}.1.snap")
            s2 = tracemalloc.Snapshot.load(f"{out}.2.snap")
            result["traced_kib_per_phone"] = (after["traced"] - before["traced"]) / n / 1024
            stats = s2.compare_to(s1, "lineno")
            result["lines"] = [
                [
                    str(st.traceback[0]).replace(str(Path.home()), "~"),
                    round(st.size_diff / n),
                    round(st.count_diff / n, 2),
                ]
                for st in stats[:30]
                if st.size_diff > 0
            ]
        return result
    finally:
        if gen is not None:
            await gen.stop()
        await server.stop()


def show(r: dict) -> str:
    lines = [
        f"\n== {r['server']}: {r['phones']} idle phones",
        f"RSS {r['rss_kib_per_phone']:.1f} KiB per phone; objects the GC tracks (shallow sizes) "
        f"{r['gc_tracked_bytes_per_phone'] / 1024:.1f} KiB"
        + (f"; tracemalloc {r['traced_kib_per_phone']:.1f} KiB" if "traced_kib_per_phone" in r else ""),
        "",
        "by type: objects per phone, bytes per phone (shallow)",
    ]
    lines += [f"  {b:>7,} B  {c:>6.2f}  {name}" for name, c, b in r["types"]]
    if "lines" in r:
        lines += ["", "by allocating line (tracemalloc): bytes per phone, blocks per phone"]
        lines += [f"  {b:>7,} B  {c:>6.2f}  {where}" for where, b, c in r["lines"]]
    return "\n".join(lines)


async def main_async(a: argparse.Namespace) -> list[dict]:
    work = Path(tempfile.mkdtemp(prefix="leitai-memprobe-"))
    out = []
    for kind in a.servers.split(","):
        started = time.monotonic()
        r = await probe(kind.strip(), a.phones, a.trace, work, a.idle, a.also)
        r["seconds"] = round(time.monotonic() - started, 1)
        print(show(r), flush=True)
        out.append(r)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.memprobe", description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default="leitai,websockets,socketio")
    ap.add_argument("--phones", type=int, default=5000)
    ap.add_argument("--trace", action="store_true", help="tracemalloc in the server (by allocating line)")
    ap.add_argument("--idle", type=float, default=2.0, help="seconds the phones sit idle before the dump")
    ap.add_argument("--json", default="", help="write the results here too")
    ap.add_argument("--also", default="", help="a folder whose sitecustomize.py the server runs too (an experiment)")
    a = ap.parse_args()
    try:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    results = asyncio.run(main_async(a))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
