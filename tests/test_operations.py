"""Operations: metrics, health, readiness, QR code, structured logs."""

import json

import httpx

from conftest import create_show


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{") and line.split(" ")[0] == name:
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
