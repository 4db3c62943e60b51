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
