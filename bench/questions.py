"""What a new question costs as the queue grows (issue 16): a real server, one show,
questions asked one after another up to `--questions`, with a console watching.

    scripts/bench-questions                    # 10,000 questions, embedded store
    scripts/bench-questions --questions 2000   # smaller
    scripts/bench-questions --redis            # against a redis-server of its own

Every `--step` questions it prints the median and p99 time from `ask` to its ack
(sequential: one in flight) and the server's CPU per question over that step, so a
cost that grows with the queue shows as a slope. At the end a new console connects
(its snapshot is bounded) and the time to its snapshot is printed. The questions are
realistic: the labelled set's (tests/data/questions.jsonl, if present) and variations
of them, so the clusters have real work to do.
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from .attack import LocalServer, Socket, create_show, host_session, mint

ROOT = Path(__file__).resolve().parent.parent
LABELLED = ROOT / "tests" / "data" / "questions.jsonl"
STEMS = [
    "医院党建怎样让病人少跑腿",
    "志愿服务怎么和社区治理结合",
    "两新组织的党建如何服务群众",
    "年轻人为什么愿意加入公益组织",
    "社区食堂的钱从哪里来",
    "老旧小区加装电梯谁来出钱",
    "医保报销还能再简化吗",
    "企业党建会不会增加负担",
    "公益组织怎样让捐款更透明",
    "网格员的工作量是不是太大了",
]
TAILS = ["？", "?", "", "呢？", "，能具体说说吗？", "，红方怎么看？", "，蓝方怎么看？", "！"]


def texts(n: int) -> list[str]:
    """`n` question texts: the labelled set's and variations (so repeats and near-repeats)."""
    base = list(STEMS)
    if LABELLED.exists():
        for line in LABELLED.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                base.append(str(row.get("text", "")).strip())
    base = [b for b in base if b]
    rng = random.Random(16)
    return [f"{rng.choice(base)}{rng.choice(TAILS)}"[:200] for _ in range(n)]


def own_redis() -> tuple[subprocess.Popen[bytes], str, str]:
    """A throwaway redis-server on a free port (never the one on 6379)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="leitai-bq-redis-")
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "yes", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )
    return proc, f"redis://127.0.0.1:{port}/0", workdir


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else 0.0


async def run(args: argparse.Namespace) -> None:
    env = {  # one device asks them all, as fast as it may
        "DEVICE_POW_COST": "1",
        "DEVICE_MINT_RATE": "1000",
        "VOTE_MIN_WATCH_S": "0",
        "QUESTION_INTERVAL_S": "0.00001",
        "FRAME_RATE": "100000",
        "FRAME_BURST": "100000",
    }
    redis = None
    if args.redis:
        redis = own_redis()
        env.update(REDIS_URL=redis[1], REDIS_ALLOW_NO_PERSISTENCE="1")
    try:
        server = LocalServer(**env)
        if redis:
            server.env["REDIS_URL"] = redis[1]
        with server as srv:
            await measure(srv, args)
    finally:
        if redis:
            redis[0].terminate()
            redis[0].wait(10)
            shutil.rmtree(redis[2], ignore_errors=True)


async def measure(srv: LocalServer, args: argparse.Namespace) -> None:
    session = host_session(srv.url)
    slug = f"questions-{int(time.time())}"
    create_show(srv.url, session, slug)
    console = await Socket.open(srv.url, "console", slug, f"lt_session={session}")
    async with httpx.AsyncClient(base_url=srv.url, timeout=30) as http:
        cookie = await mint(http, slug, "198.51.100.9")
    phone = await Socket.open(srv.url, "audience", slug, f"lt_device={cookie}", "198.51.100.9")
    assert srv.proc is not None
    proc = psutil.Process(srv.proc.pid)
    mode = "redis" if args.redis else "embedded"
    print(f"{mode}: {args.questions} questions, one at a time, a console watching; `uptime`: {os.getloadavg()}")
    print("questions   ack p50 ms   ack p99 ms   server CPU ms per question")
    lat: list[float] = []
    cpu0 = sum(proc.cpu_times()[:2])
    for i, text in enumerate(texts(args.questions), 1):
        t0 = time.perf_counter()
        reply = await phone.request({"type": "ask", "text": text})
        lat.append(time.perf_counter() - t0)
        assert reply["type"] == "ack", reply
        if i % args.step == 0:
            cpu1 = sum(proc.cpu_times()[:2])
            print(
                f"{i:>9}   {statistics.median(lat) * 1000:>10.2f}   {pct(lat, 99) * 1000:>10.2f}   "
                f"{(cpu1 - cpu0) * 1000 / len(lat):>10.2f}",
                flush=True,
            )
            lat, cpu0 = [], cpu1
    t0 = time.perf_counter()
    late = await Socket.open(srv.url, "console", slug, f"lt_session={session}")
    snap = await late.snapshot
    print(
        f"a console connecting now: snapshot in {(time.perf_counter() - t0) * 1000:.0f} ms, "
        f"{len(snap['show']['questions'])} questions in it; `uptime`: {os.getloadavg()}"
    )
    for sock in (late, phone, console):
        await sock.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=10_000)
    ap.add_argument("--step", type=int, default=1000)
    ap.add_argument("--redis", action="store_true", help="against a redis-server of its own")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
