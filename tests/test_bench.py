"""The benchmark's quick mode runs end to end, and every like it sends is counted.

Timings are not asserted: this machine is shared and noisy (docs/performance.md).
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_quick_mode_counts_every_like(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "bench",
        "--quick",
        "--servers",
        "leitai",
        "--phones",
        "20",
        "--rate",
        "200",
        "--duration",
        "3",
        "--samples",
        "5",
        "--no-chart",
        "--no-pin",
        "--out",
        str(tmp_path),
    ]
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
    cmd = [
        sys.executable,
        "-m",
        "bench",
        "--quick",
        "--servers",
        "websockets,socketio",
        "--phones",
        "20",
        "--rate",
        "200",
        "--duration",
        "3",
        "--samples",
        "5",
        "--no-chart",
        "--no-pin",
        "--out",
        str(tmp_path),
    ]
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
        return {
            "server": kind,
            "phones": phones,
            "on_time": ok,
            "why_not_on_time": [] if ok else ["p99 900 ms"],
            "frames_in_per_s": phones,
            "deliveries_per_s": 2 * phones,
            "server_cpu_pct": 50,
            "cpu_us_per_delivery": 10.0,
            "tap_to_overlay": {"p99_ms": 100},
            "overlay_tallies_per_s": 10,
            "phone_tallies_per_s": {"mean": 2.0},
            "rss_per_phone_kib": 20,
        }

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
    good = {
        "phones": 100,
        "held": 100,
        "likes_equal": True,
        "overlay_tallies_per_s": 9.9,
        "phone_tallies_per_s": {"mean": 1.96},
        "tap_to_overlay": {"p99_ms": 120},
    }
    assert run.on_time(good, opts) == (True, [])
    late = {**good, "overlay_tallies_per_s": 9.0, "tap_to_overlay": {"p99_ms": 400}}
    assert run.on_time(late, opts) == (False, ["overlay 9.0/s", "p99 400 ms"])


def test_report_of_repeated_runs(tmp_path):
    """Medians, spreads, run-by-run ratios and the chart from repeated runs of each point."""
    from bench import report

    def point(server, rep, p99, cpu, probe=None):
        return {
            "server": server,
            "phones": 1000,
            "rep": rep,
            "probe": probe,
            "held": 1000,
            "likes_equal": True,
            "likes_sent": {"a": 5, "b": 5},
            "likes_counted": {"a": 5, "b": 5},
            "on_time": True,
            "tap_to_overlay": {"p50_ms": 50, "p99_ms": p99},
            "overlay_to_phone": {"p50_ms": 200, "p99_ms": 400},
            "overlay_tallies_per_s": 10.0,
            "phone_tallies_per_s": {"mean": 2.0, "min": 2.0},
            "server_cpu_pct": cpu,
            "server_idle_cpu_pct": 1.0,
            "rss_load_mib": 50,
            "rss_per_phone_kib": 20.0,
            "gen_cpu_pct": [5],
            "other_cpu_pct": 3,
            "cpu_us_per_delivery": cpu / 2,
            "frames_in_per_s": 100,
            "deliveries_per_s": 2000,
            "deliveries_per_cpu_s": 2000 * 100 / cpu,
            "deliveries_per_net_cpu_s": 2000 * 100 / (cpu - 1),
        }

    results = [
        point("leitai", 1, 100, 20),
        point("websockets", 1, 120, 22),
        point("leitai", 2, 110, 24),
        point("websockets", 2, 100, 30),
        point("leitai", 1, 100, 10, "fanout"),
        point("websockets", 1, 100, 12, "fanout"),
    ]
    data = {
        "results": results,
        "capacity": [],
        "machine": {"cores": 2, "cpu": "test"},
        "options": {"rate": 2000, "duration": 5, "capacity": False},
    }
    spreads = report.spreads(data)
    assert "| Leitai | 1,000 | 2 | 50 (50–50) | 105 (100–110) |" in spreads
    ratios = report.ratios(data)
    assert "| 1,000 | websockets | 2 / 2 | 0.95× (0.83–1.10) |" in ratios  # 105 / 110; run by run 100/120, 110/100
    assert "1.20×" in report.fanout(data)  # deliveries per CPU-second: 12 / 10
    assert "1.20× broadcast()" in report.targets(data)
    report.chart(data, tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 0


def test_storm_mode_brings_every_phone_back(tmp_path):
    """`--storm`: phones on the show, the server restarted, every phone back: with
    resume each gets `resumed` (nothing changed meanwhile), without it a snapshot."""
    cmd = [sys.executable, "-m", "bench", "--storm", "--phones", "40", "--gens", "1", "--timeout", "40"]
    cmd += ["--server-cpus", "", "--client-cpus", "", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    [path] = tmp_path.glob("storm-*.json")
    plain, resumed = json.loads(path.read_text())["storm"]
    assert plain["all_live"] and plain["kinds"] == {"snapshot": 40} and not plain["resume"]
    assert resumed["all_live"] and resumed["kinds"] == {"resumed": 40} and resumed["resume"]
    assert resumed["server_cpu_s"] > 0
    assert "| yes | 40 | 40/40 |" in proc.stdout  # the table
