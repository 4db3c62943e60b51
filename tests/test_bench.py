"""The benchmark's quick mode runs end to end, and every like it sends is counted.

Timings are not asserted: this machine is shared and noisy (docs/performance.md).
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_quick_mode_counts_every_like(tmp_path):
    cmd = [sys.executable, "-m", "bench", "--quick", "--servers", "leitai", "--phones", "20",
           "--rate", "200", "--duration", "3", "--samples", "5", "--no-chart", "--no-pin",
           "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=55)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    data = json.loads((tmp_path / "latest.json").read_text())
    [r] = data["results"]
    assert "error" not in r, r.get("traceback")
    assert r["held"] == 20
    assert r["frames_sent"] > 0
    sent = r["likes_sent"]
    assert sent["a"] + sent["b"] > 0
    assert r["likes_counted"] == sent
    assert r["likes_equal"] is True
    assert r["tap_to_overlay"]["n"] == r["frames_sent"]  # every frame reached the overlay
    assert "| Leitai |" in proc.stdout  # the table


def test_bench_baselines_count_every_like(tmp_path):
    """Both baselines do the same work as Leitai: every like counted, tallies to every role."""
    cmd = [sys.executable, "-m", "bench", "--quick", "--servers", "websockets,socketio", "--phones", "20",
           "--rate", "200", "--duration", "3", "--samples", "5", "--no-chart", "--no-pin", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=55)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    data = json.loads((tmp_path / "latest.json").read_text())
    assert [r["server"] for r in data["results"]] == ["websockets", "socketio"]
    for r in data["results"]:
        assert "error" not in r, r.get("traceback")
        assert r["held"] == 20
        assert r["likes_counted"] == r["likes_sent"]
        assert r["deliveries"]["phones"] > 0 and r["deliveries"]["screens"] > 0


def test_capacity_search_doubles_then_bisects(monkeypatch, tmp_path):
    """The search finds the largest passing count within its resolution, and a failing
    count is tried again before it counts as failed."""
    import asyncio

    from bench import run

    tried: list[int] = []

    async def fake_measure(opts, kind, phones, cookies, redis, work):
        tried.append(phones)
        ok = phones <= 13_000
        return {"server": kind, "phones": phones, "on_time": ok, "why_not_on_time": [] if ok else ["p99 900 ms"],
                "frames_in_per_s": phones, "deliveries_per_s": 2 * phones, "server_cpu_pct": 50,
                "cpu_us_per_delivery": 10.0, "tap_to_overlay": {"p99_ms": 100}, "overlay_tallies_per_s": 10,
                "phone_tallies_per_s": {"mean": 2.0}, "rss_per_phone_kib": 20}

    monkeypatch.setattr(run, "measure", fake_measure)
    opts = run.Options(servers=["leitai"], phones=[], rate=0, duration=1, cap_start=2000, cap_max=19_000)
    summary, probes = asyncio.run(run.capacity_search(opts, "leitai", None, None, tmp_path))
    assert tried[:4] == [2000, 4000, 8000, 16000]
    assert tried.count(16000) == 2  # confirmed before it counts as failed
    assert 13_000 - 0.1 * 13_000 <= summary["phones"] <= 13_000
    assert summary["first_failed"] - summary["phones"] <= max(250, 0.1 * summary["phones"])
    assert summary["why_failed"] == ["p99 900 ms"] and not summary["capped"]
    assert len(probes) == len(tried)


def test_on_time_verdict():
    from bench import run

    opts = run.Options(servers=["leitai"], phones=[], rate=0, duration=10)
    good = {"phones": 100, "held": 100, "likes_equal": True, "overlay_tallies_per_s": 9.9,
            "phone_tallies_per_s": {"mean": 1.96}, "tap_to_overlay": {"p99_ms": 120}}
    assert run.on_time(good, opts) == (True, [])
    late = {**good, "overlay_tallies_per_s": 9.0, "tap_to_overlay": {"p99_ms": 400}}
    assert run.on_time(late, opts) == (False, ["overlay 9.0/s", "p99 400 ms"])
