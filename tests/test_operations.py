"""Operations: metrics, health, readiness, QR code, structured logs."""

import json

import httpx
from conftest import create_show


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or (line.startswith(name + "{") and line.split(" ")[0] == name):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


async def test_metrics_count_what_happens(server, clients, show):
    before = httpx.get(f"{server.url}/metrics").text
    overlay = await clients.overlay(show)
    phone = await clients.audience(show)
    await phone.send({"type": "like", "side": "a", "count": 7})
    await phone.request({"type": "vote", "side": "a"})  # conflict: no round
    await overlay.wait_for(lambda f: f["type"] == "tally" and f["likes"]["a"] == 7)
    text = httpx.get(f"{server.url}/metrics").text
    assert metric(text, "leitai_likes_total") - metric(before, "leitai_likes_total") == 7
    assert metric(text, 'leitai_errors_total{code="conflict"}') >= 1
    assert metric(text, 'leitai_sockets{role="overlay"}') >= 1
    assert metric(text, 'leitai_sockets{role="audience"}') >= 1
    assert metric(text, 'leitai_frames_in_total{role="audience"}') >= 2
    assert metric(text, "leitai_frames_out_total") > metric(before, "leitai_frames_out_total")
    assert metric(text, "leitai_tick_seconds_count") > 0
    assert "leitai_redis_reconnects_total" in text


def test_health_ready_and_qr(server):
    assert httpx.get(f"{server.url}/healthz").text == "ok"
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    slug = create_show(server.url)
    r = httpx.get(f"{server.url}/qr/{slug}.svg")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert r.text.startswith("<svg") and "<script" not in r.text
    assert httpx.get(f"{server.url}/qr/nope.svg").status_code == 404


def test_logs_are_json_lines(server):
    lines = [line for line in server.log if line.startswith("{")]
    assert lines
    entries = [json.loads(line) for line in lines]
    assert all({"ts", "level", "logger", "msg"} <= set(e) for e in entries)


async def test_the_fast_write_path_is_in_use(server, clients, show):
    """Frames go straight to each transport: an upgrade of uvicorn or Starlette that
    loses the fast path fails here (and says so in the log and /metrics)."""
    await clients.overlay(show)
    await clients.audience(show)
    text = httpx.get(f"{server.url}/metrics").text
    assert metric(text, "leitai_fast_path") == 1
    assert metric(text, 'leitai_socket_paths_total{path="fast"}') >= 2
    assert metric(text, 'leitai_socket_paths_total{path="queue"}') == 0
    assert any("socket write path: fast" in line for line in server.log)


async def test_idle_sockets_are_lean(server, clients, show):
    """Sockets hold the lean incoming queue and writable event (server/edge.py): an
    upgrade of uvicorn that breaks their assumptions fails here (and logs a warning)."""
    phone = await clients.audience(show)
    await phone.request({"type": "vote", "side": "a"})  # a frame in, through the lean queue
    assert metric(httpx.get(f"{server.url}/metrics").text, "leitai_lean_sockets") == 1
    assert any("idle sockets: lean" in line for line in server.log)


async def test_uvicorn_factory_start_can_be_signed_in_to(tmp_path):
    """`uvicorn --factory server.app:create_app` (not `python -m server`) makes and keeps
    the host token in DATA_DIR, so the console can be signed in to. Run with another
    WebSocket implementation, its sockets take the queue path, and /metrics says so."""
    import asyncio
    import os
    import re
    import subprocess
    import sys

    from conftest import ROOT, Client

    env = {**os.environ, "DATA_DIR": str(tmp_path), "LOG_FORMAT": "text", "SECRET_KEY": "k"}
    env.pop("HOST_TOKEN", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "server.app:create_app",
            "--port",
            "0",
            "--host",
            "127.0.0.1",
            "--ws",
            "wsproto",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        port = 0
        for line in proc.stdout:
            m = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        base = f"http://127.0.0.1:{port}"
        token = (tmp_path / "host_token").read_text().strip()
        with httpx.Client(base_url=base) as http:
            r = http.post("/login", data={"token": token, "next": "/shows"})
            assert r.status_code == 303 and r.headers["location"] == "/shows"
            session = r.cookies["lt_session"]
        console = await Client.connect(base.replace("http", "ws"), "console", "demo", f"lt_session={session}")
        await console.snapshot()
        await console.close()
        text = await asyncio.to_thread(lambda: httpx.get(f"{base}/metrics").text)
        assert metric(text, "leitai_fast_path") == 0
        assert metric(text, 'leitai_socket_paths_total{path="queue"}') == 1
    finally:
        proc.terminate()
        proc.wait(10)
