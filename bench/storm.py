"""The reconnect storm after a restart: N phones on the show, the server restarted
(SIGTERM: every socket closed with 1012, then a new process on the same port and
DATA_DIR), every phone coming back as the page does (overlay/common/ws.js: full
jitter, 0.5 s doubling to 15 s), with or without resume (`?since=&epoch=`).

    scripts/bench --storm                          # 10,000 phones, without then with resume
    scripts/bench --storm --phones 2000 --gens 1   # smaller
    python -m bench.storm gen CONFIG.json          # one generator process (started by the above)

Measured per run: the time from the restart (SIGTERM) until every phone has its
first frame again (`snapshot` or `resumed`), the same from the moment the new
process is listening, the spread of the phones' times, how many resumed, and the
new server process's CPU seconds from listening until the last phone was live
(beside the generators' CPU seconds, on their own cores).
"""

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from .report import profile_summary
from .servers import HOST, Proc, Server, free_port
from .wire import WSClient, fetch_cookies, upgrade_request

ROOT = Path(__file__).resolve().parent.parent
SLUG = "demo"
BACKOFF_BASE_S, BACKOFF_MAX_S = 0.5, 15.0  # the phone page's (overlay/common/ws.js)
RESTART_MAX_S, RESTART_WINDOW_S = 2.0, 30.0  # and after a 1012, for a while


# -- one generator process ------------------------------------------------------------


class Phone:
    """One phone's memory across its sockets: where it is in the stream, its backoff."""

    __slots__ = ("attempt", "cookie", "epoch", "kind", "live", "lost_at", "restart_at", "seq", "t_live", "tries")

    def __init__(self, cookie: str) -> None:
        self.cookie = cookie
        self.attempt = 0
        self.seq: int | None = None
        self.epoch = ""
        self.live = False
        self.lost_at = 0.0
        self.t_live = 0.0
        self.kind = ""
        self.tries = 0
        self.restart_at: float | None = None


class Sock(WSClient):
    __slots__ = ("first", "gen", "phone")

    def __init__(self, gen: "Gen", phone: Phone, request: bytes) -> None:
        super().__init__(request, gen.key)
        self.gen, self.phone, self.first = gen, phone, True

    def on_open(self) -> None:
        self.send_text(b'{"type":"hello"}')

    def on_text(self, p: bytes) -> None:
        phone = self.phone
        if self.first:
            self.first = False
            frame = orjson.loads(p)
            kind = frame.get("type")
            if kind not in ("snapshot", "resumed"):
                return
            if kind == "snapshot":
                phone.epoch = frame.get("epoch", "")
            phone.seq = int(frame["since"] if kind == "resumed" else frame["seq"])
            phone.live, phone.attempt, phone.kind, phone.restart_at = True, 0, kind, None
            phone.t_live = time.monotonic()
            self.gen.became_live(phone)
        elif b'"type":"tally"' not in p[:48]:  # a discrete frame: the phone is one seq further
            frame = orjson.loads(p)
            if isinstance(frame.get("seq"), int):
                phone.seq = frame["seq"]

    def on_lost(self) -> None:
        self.gen.lost_socket(self.phone, self.close_code)


class Gen:
    def __init__(self, cfg: dict) -> None:
        self.port = cfg["port"]
        self.resume = cfg["resume"]
        self.key = os.urandom(4)
        self.phones = [Phone(c) for c in cfg["cookies"]]
        self.loop = asyncio.get_running_loop()
        self.armed = False
        self.waiting = len(self.phones)  # phones not live (since the last arm)
        self.done: asyncio.Future | None = None
        self.sem = asyncio.Semaphore(cfg.get("concurrency", 200))

    def request(self, phone: Phone) -> bytes:
        path = f"/ws/audience/{SLUG}"
        if self.resume and phone.seq is not None and phone.epoch:
            path += f"?since={phone.seq}&epoch={phone.epoch}"
        return upgrade_request(HOST, self.port, path, f"lt_device={phone.cookie}")

    async def connect(self, phone: Phone) -> None:
        phone.tries += 1
        try:
            async with self.sem:
                await self.loop.create_connection(lambda: Sock(self, phone, self.request(phone)), HOST, self.port)
        except OSError:
            self.retry(phone)

    def retry(self, phone: Phone) -> None:
        restarting = phone.restart_at is not None and time.monotonic() - phone.restart_at < RESTART_WINDOW_S
        cap = min(RESTART_MAX_S if restarting else BACKOFF_MAX_S, BACKOFF_BASE_S * 2**phone.attempt)
        phone.attempt += 1
        self.loop.call_later(random.random() * cap, lambda: self.loop.create_task(self.connect(phone)))

    def lost_socket(self, phone: Phone, code: int | None = None) -> None:
        if code == 1012 and phone.restart_at is None:
            phone.restart_at = time.monotonic()
        if phone.live:
            phone.live = False
            phone.lost_at = time.monotonic()
            self.waiting += 1
        self.retry(phone)

    def became_live(self, phone: Phone) -> None:
        self.waiting -= 1
        if self.waiting == 0 and self.done is not None and not self.done.done():
            self.done.set_result(None)

    async def connect_all(self) -> dict:
        self.done = self.loop.create_future()
        for phone in self.phones:
            self.loop.create_task(self.connect(phone))
        await asyncio.wait_for(self.done, 300)
        return {"event": "ready", "phones": len(self.phones)}

    def arm(self) -> None:
        """From now on: wait for every phone to drop and come back."""
        for phone in self.phones:
            phone.tries = 0
        self.done = self.loop.create_future()

    def report(self) -> dict:
        live = [p for p in self.phones if p.live and p.t_live > 0]
        kinds: dict[str, int] = {}
        for p in live:
            kinds[p.kind] = kinds.get(p.kind, 0) + 1
        return {
            "event": "report",
            "live": len(live),
            "phones": len(self.phones),
            "t_live": [p.t_live for p in self.phones],
            "kinds": kinds,
            "tries": sum(p.tries for p in self.phones),
            "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
        }


def _say(obj: dict) -> None:
    sys.stdout.write(orjson.dumps(obj).decode() + "\n")
    sys.stdout.flush()


async def gen_main(config: str) -> None:
    cfg = json.loads(Path(config).read_text())
    gen = Gen(cfg)
    reader = asyncio.StreamReader()
    await gen.loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        cmd = orjson.loads(line)["cmd"]
        if cmd == "connect":
            _say(await gen.connect_all())
        elif cmd == "arm":
            gen.arm()
            _say({"event": "armed"})
        elif cmd == "wait":  # until every phone dropped and came back (or the coordinator gives up)
            try:
                await asyncio.wait_for(asyncio.shield(gen.done), orjson.loads(line)["timeout"])
            except TimeoutError:
                pass
            _say(gen.report())
        elif cmd == "quit":
            os._exit(0)  # its sockets and pending reconnects go with it


# -- the coordinator ----------------------------------------------------------------------


class GenProc:
    def __init__(self, cfg: dict, work: Path, index: int, cpus: str | None) -> None:
        self.path = work / f"storm-gen{index}.json"
        self.path.write_text(json.dumps(cfg))
        self.cpus = cpus
        self.proc: asyncio.subprocess.Process | None = None
        self.watch: Proc | None = None

    async def start(self) -> None:
        cmd = [sys.executable, "-m", "bench.storm", "gen", str(self.path)]
        if self.cpus:
            cmd = ["taskset", "-c", self.cpus, *cmd]
        self.proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**26
        )
        self.watch = Proc(self.proc.pid)

    async def ask(self, cmd: dict, timeout: float = 600) -> dict:
        self.proc.stdin.write(orjson.dumps(cmd) + b"\n")
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("a storm generator exited")
        return orjson.loads(line)

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            try:
                await self.ask({"cmd": "quit"}, 5)
            except Exception:
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")


async def storm(opts: argparse.Namespace, resume: bool, cookies: list[str], server: Server, work: Path) -> dict:
    share = [cookies[i :: opts.gens] for i in range(opts.gens)]
    gens = [
        GenProc({"port": server.port, "resume": resume, "cookies": c}, work, i, opts.client_cpus)
        for i, c in enumerate(share)
    ]
    for g in gens:
        await g.start()
    try:
        started = time.monotonic()
        await asyncio.gather(*(g.ask({"cmd": "connect"}) for g in gens))
        print(f"  {opts.phones} phones on the show in {time.monotonic() - started:.1f}s", flush=True)
        await asyncio.gather(*(g.ask({"cmd": "arm"}) for g in gens))
        gen_cpu0 = sum(g.watch.cpu_s() for g in gens)
        t_stop = time.monotonic()
        await server.stop()
        await server.start()
        t_ready = time.monotonic()
        cpu0 = server.watch.cpu_s()
        spy = await profile(opts, server, work, resume)
        reports = await asyncio.gather(*(g.ask({"cmd": "wait", "timeout": opts.timeout}) for g in gens))
        cpu1 = server.watch.cpu_s()
        if spy is not None:
            await spy.wait()
        gen_cpu = sum(g.watch.cpu_s() for g in gens) - gen_cpu0
    finally:
        for g in gens:
            await g.stop()
    times = [t for r in reports for t in r["t_live"] if t > t_stop]
    live = len(times)
    kinds: dict[str, int] = {}
    for r in reports:
        for k, n in r["kinds"].items():
            kinds[k] = kinds.get(k, 0) + n
    last = max(times) if times else float("nan")
    summary = {}
    if opts.profile:
        summary = profile_summary(work / f"storm-profile-{'resume' if resume else 'snapshot'}.txt", top=12)
    return {
        "profile": summary,
        "resume": resume,
        "phones": opts.phones,
        "live": live,
        "all_live": live == opts.phones,
        "restart_s": round(t_ready - t_stop, 2),
        "all_live_after_restart_s": round(last - t_stop, 2),
        "all_live_after_listening_s": round(last - t_ready, 2),
        "p50_after_listening_s": round(_pct([t - t_ready for t in times], 50), 2),
        "p99_after_listening_s": round(_pct([t - t_ready for t in times], 99), 2),
        "kinds": kinds,
        "connect_attempts": sum(r["tries"] for r in reports),
        # the new process from listening until the last phone was live (and a little after)
        "server_cpu_s": round(cpu1 - cpu0, 2),
        "gen_cpu_s": round(gen_cpu, 2),
    }


async def profile(opts: argparse.Namespace, server: Server, work: Path, resume: bool) -> Any:
    """With --profile: py-spy on the new server process for the first seconds of the storm."""
    if not opts.profile:
        return None
    out = work / f"storm-profile-{'resume' if resume else 'snapshot'}.txt"
    cmd = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(server.proc.pid)]
    cmd += ["--duration", str(int(opts.profile)), "--rate", "200", "--nonblocking", "--format", "raw", "-o", str(out)]
    if opts.client_cpus:
        cmd = ["taskset", "-c", opts.client_cpus, *cmd]
    return await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )


async def run(opts: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="leitai-storm-"))
    port = free_port()
    env = {"PORT": str(port), **dict(kv.split("=", 1) for kv in opts.server_env)}
    server = Server("leitai", cpus=opts.server_cpus, workdir=work, env=env)
    server.port = port
    await server.start()
    try:
        started = time.monotonic()
        cookies = await fetch_cookies(HOST, port, f"/s/{SLUG}", "lt_device", opts.phones)
        print(f"  fetched {len(cookies)} device cookies in {time.monotonic() - started:.1f}s", flush=True)
        runs = []
        for _ in range(opts.repeat):
            for mode in opts.modes:
                result = await storm(opts, mode == "resume", cookies, server, work)
                print("  " + json.dumps(result), flush=True)
                runs.append(result)
    finally:
        await server.stop()
    return {"storm": runs, "phones": opts.phones, "gens": opts.gens, "load": os.getloadavg()}


def table(data: dict) -> str:
    rows = [
        "| resume | phones | all live | after restart (s) | after listening (s) | p50 / p99 (s) "
        "| resumed / snapshots | server CPU (s) | generators CPU (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["storm"]:
        rows.append(
            f"| {'yes' if r['resume'] else 'no'} | {r['phones']} | {r['live']}/{r['phones']} "
            f"| {r['all_live_after_restart_s']} | {r['all_live_after_listening_s']} "
            f"| {r['p50_after_listening_s']} / {r['p99_after_listening_s']} "
            f"| {r['kinds'].get('resumed', 0)} / {r['kinds'].get('snapshot', 0)} "
            f"| {r['server_cpu_s']} | {r['gen_cpu_s']} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["gen"]:
        resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
        asyncio.run(gen_main(argv[1]))
        return 0
    ap = argparse.ArgumentParser(prog="scripts/bench --storm", description=__doc__.split("\n\n")[0])
    ap.add_argument("--phones", type=int, default=10000)
    ap.add_argument("--gens", type=int, default=2, help="generator processes (each holds phones/gens sockets)")
    ap.add_argument("--modes", default="snapshot,resume", help="comma list of snapshot,resume (run in this order)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for every phone to be back")
    ap.add_argument("--server-cpus", default="0", help="taskset -c for the server (default 0; '' for none)")
    ap.add_argument("--client-cpus", default="1", help="taskset -c for the generators (default 1; '' for none)")
    ap.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--out", default=str(ROOT / "bench-results"))
    ap.add_argument("--profile", type=float, default=0, help="py-spy the new server for this many seconds of the storm")
    opts = ap.parse_args(argv)
    opts.modes = [m.strip() for m in opts.modes.split(",") if m.strip()]
    opts.server_cpus = opts.server_cpus or None
    opts.client_cpus = opts.client_cpus or None
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    data = asyncio.run(run(opts))
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"storm-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    print()
    print(table(data))
    for r in data["storm"]:
        if r.get("profile"):
            print(f"\nprofile, resume={r['resume']} (share of busy samples, by Python function):")
            for name, pct in r["profile"]["python"]:
                print(f"  {pct:5.1f} %  {name}")
    print(f"\nJSON: {path}")
    return 0 if all(r["all_live"] for r in data["storm"]) else 1


if __name__ == "__main__":
    sys.exit(main())
