"""Starting and watching the processes under test: Leitai, the two baselines,
a throwaway Redis."""

import asyncio
import os
import re
import signal
import socket
import sys
import time
from collections import deque
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST = "127.0.0.1"
HOST_TOKEN = "bench-host-token"
SECRET = "bench-secret"

_RUNNING = re.compile(r"Uvicorn running on http://[\d.]+:(\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def pinned(cmd: list[str], cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus, *cmd] if cpus else cmd


class Proc:
    """A child process whose CPU time and memory we read (with its children)."""

    def __init__(self, pid: int) -> None:
        self.ps = psutil.Process(pid)
        self._seen: dict[int, psutil.Process] = {pid: self.ps}

    def procs(self) -> list[psutil.Process]:
        try:
            for child in self.ps.children(recursive=True):
                self._seen.setdefault(child.pid, child)
        except psutil.Error:
            pass
        return [p for p in self._seen.values() if p.is_running()]

    def cpu_s(self) -> float:
        total = 0.0
        for p in self.procs():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def sys_s(self) -> float:
        """Kernel time alone (socket reads and writes, mostly)."""
        total = 0.0
        for p in self.procs():
            try:
                total += p.cpu_times().system
            except psutil.Error:
                pass
        return total

    def rss(self) -> int:
        total = 0
        for p in self.procs():
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs()]


class Server:
    """One server under test, started on a free port and stopped at the end."""

    def __init__(
        self,
        kind: str,
        *,
        cpus: str | None,
        workdir: Path,
        redis_url: str = "",
        workers: int = 1,
        env: dict | None = None,
    ) -> None:
        self.kind = kind
        self.cpus = cpus
        self.workdir = workdir
        self.redis_url = redis_url
        self.workers = workers if kind == "leitai" else 1
        self.extra_env = env or {}
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.log: deque[str] = deque(maxlen=400)
        self.drops = 0
        self.errors = 0
        self.watch: Proc | None = None
        self._pump: asyncio.Task | None = None

    def command(self) -> tuple[list[str], dict]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("REDIS_URL", None)
        if self.kind == "leitai":
            data = self.workdir / "data"
            data.mkdir(parents=True, exist_ok=True)
            env.update(
                PORT="0",
                HOST=HOST,
                DATA_DIR=str(data),
                HOST_TOKEN=HOST_TOKEN,
                SECRET_KEY=SECRET,
                SOCKETS_PER_IP="0",
                VENUE_NETWORKS="127.0.0.0/8",  # every phone of the bench is on loopback: a venue
                # the bench's phones tap faster than people (in --quick, ~50/s each): count them all,
                # as the baselines do; the cap itself costs one script call per tick
                LIKE_RATE="100000",
                LIKE_BURST="100000",
                LOG_LEVEL="info",
                WORKERS=str(self.workers),
            )
            if self.redis_url:
                env.update(
                    REDIS_URL=self.redis_url,
                    REDIS_PREFIX=f"bench{os.getpid()}x{int(time.time() * 1000) % 10**8}",
                    REDIS_ALLOW_NO_PERSISTENCE="1",  # the bench's Redis keeps nothing on disk, on purpose
                )
            env.update(self.extra_env)
            return [PY, "-m", "server"], env
        module = {"websockets": "bench.baseline_websockets", "socketio": "bench.baseline_socketio"}[self.kind]
        env.update(self.extra_env)
        return [PY, "-m", module, "--host", HOST, "--port", "0", "--secret", SECRET], env

    async def start(self, timeout: float = 30) -> "Server":
        cmd, env = self.command()
        self.proc = await asyncio.create_subprocess_exec(
            *pinned(cmd, self.cpus),
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            limit=2**20,
        )
        ready = asyncio.get_running_loop().create_future()
        started = 0

        async def pump() -> None:
            nonlocal started
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    break
                text = line.decode(errors="replace").rstrip()
                self.log.append(text)
                m = _RUNNING.search(text)
                if m and m.group(1) != "0":
                    self.port = int(m.group(1))
                if "Application startup complete" in text:
                    started += 1
                if "dropping lagging" in text:
                    self.drops += 1
                if "Traceback" in text or " ERROR" in text or text.startswith("ERROR"):
                    self.errors += 1
                if self.port and started >= self.workers and not ready.done():
                    ready.set_result(None)
            if not ready.done():
                ready.set_exception(RuntimeError(f"{self.kind} exited:\n" + "\n".join(self.log)))

        self._pump = asyncio.create_task(pump())
        try:
            await asyncio.wait_for(ready, timeout)
        except TimeoutError:
            await self.stop()
            raise RuntimeError(f"{self.kind} did not start:\n" + "\n".join(self.log)) from None
        self.watch = Proc(self.proc.pid)
        self.watch.procs()
        return self

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            for pid in self.watch.pids() if self.watch else [self.proc.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            await self.proc.wait()
        except ProcessLookupError:
            pass
        if self._pump is not None:
            try:
                await asyncio.wait_for(self._pump, 5)
            except (TimeoutError, Exception):
                self._pump.cancel()


class Redis:
    """A throwaway redis-server on a free port: no persistence, or with `aof_dir` an
    append-only file there (the soak measures its growth)."""

    def __init__(self, cpus: str | None, aof_dir: Path | None = None) -> None:
        self.cpus = cpus
        self.aof_dir = aof_dir
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self.watch: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    async def start(self) -> "Redis":
        cmd = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            HOST,
            "--save",
            "",
            "--loglevel",
            "warning",
        ]
        cmd += ["--appendonly", "yes", "--dir", str(self.aof_dir)] if self.aof_dir else ["--appendonly", "no"]
        self.proc = await asyncio.create_subprocess_exec(
            *pinned(cmd, self.cpus), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        for _ in range(100):
            try:
                reader, writer = await asyncio.open_connection(HOST, self.port)
                writer.write(b"PING\r\n")
                if (await reader.readline()).startswith(b"+PONG"):
                    writer.close()
                    self.watch = Proc(self.proc.pid)
                    return self
                writer.close()
            except OSError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
