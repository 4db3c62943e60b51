"""Table, targets, chart and profile summary from a run's results."""

import re
from collections import Counter
from pathlib import Path

NAMES = {"leitai": "Leitai", "websockets": "websockets", "socketio": "python-socketio"}


def _f(v, fmt="{:.0f}", none="—") -> str:
    return none if v is None else fmt.format(v)


def one_line(r: dict) -> str:
    t = r["tap_to_overlay"]
    p = r["overlay_to_phone"]
    return (
        f"held {r['held']}/{r['phones']}  tap->overlay p50 {_f(t['p50_ms'])} p99 {_f(t['p99_ms'])} ms  "
        f"overlay {r['overlay_tallies_per_s']}/s  phones {r['phone_tallies_per_s']['mean']}/s "
        f"(min {r['phone_tallies_per_s']['min']})  ->phone p50 {_f(p['p50_ms'])} p99 {_f(p['p99_ms'])} ms  "
        f"likes {'=' if r['likes_equal'] else '!='}  server CPU {r['server_cpu_pct']}%  "
        f"RSS {r['rss_load_mib']} MiB ({_f(r['rss_per_phone_kib'], '{:.1f}')} KiB/phone)  "
        f"gen CPU {'+'.join(str(x) for x in r['gen_cpu_pct'])}%  other CPU {r.get('other_cpu_pct')}%"
    )


HEAD = (
    "| server | phones held | tap→overlay p50 / p99 ms | overlay tallies/s | phone tallies/s mean (min) "
    "| overlay→phone p50 / p99 ms | likes sent = counted | server CPU % | RSS MiB | KiB / idle phone "
    "| generator CPU % | other load CPU % |"
)


def row(r: dict) -> str:
    name = NAMES.get(r["server"], r["server"])
    if r.get("mode") == "redis":
        name += f" (Redis, {r.get('workers', 1)} proc)"
    if "skipped" in r:
        return f"| {name} | — / {r['phones']} | skipped: {r['skipped']} |" + " |" * 9
    if "error" in r:
        return f"| {name} | — / {r['phones']} | failed: {r['error'][:80]} |" + " |" * 9
    t, p, pt = r["tap_to_overlay"], r["overlay_to_phone"], r["phone_tallies_per_s"]
    sent = r["likes_sent"]["a"] + r["likes_sent"]["b"]
    counted = r["likes_counted"]["a"] + r["likes_counted"]["b"]
    likes = f"{sent:,} = {counted:,}" if r["likes_equal"] else f"{sent:,} ≠ {counted:,}"
    return (
        f"| {name} | {r['held']:,} / {r['phones']:,} | {_f(t['p50_ms'])} / {_f(t['p99_ms'])} "
        f"| {r['overlay_tallies_per_s']:.1f} | {_f(pt['mean'], '{:.2f}')} ({_f(pt['min'], '{:.1f}')}) "
        f"| {_f(p['p50_ms'])} / {_f(p['p99_ms'])} | {likes} | {r['server_cpu_pct']:.0f} "
        f"| {r['rss_load_mib']:.0f} | {_f(r['rss_per_phone_kib'], '{:.1f}')} "
        f"| {' + '.join(f'{x:.0f}' for x in r['gen_cpu_pct'])} | {_f(r.get('other_cpu_pct'))} |"
    )


def table(data: dict) -> str:
    rows = sorted(
        data["results"], key=lambda r: (r["phones"], list(NAMES).index(r["server"]) if r["server"] in NAMES else 9)
    )
    sep = "|" + "---|" * (HEAD.count("|") - 1)
    rate = data["options"]["rate"]
    dur = data["options"]["duration"]
    title = f"{rate:,.0f} like-frames/s for {dur:g} s per point; {data['machine']['cores']} cores"
    return "\n".join([title, "", HEAD, sep, *(row(r) for r in rows)])


def _get(data: dict, server: str, phones: int) -> dict | None:
    for r in data["results"]:
        if r["server"] == server and r["phones"] == phones and "tap_to_overlay" in r:
            return r
    return None


def targets(data: dict) -> str:
    """The issue's targets, checked against the largest phone count Leitai ran."""
    lines = ["Targets (issue #5), Leitai at each phone count:"]
    for r in data["results"]:
        if r["server"] != "leitai" or "tap_to_overlay" not in r:
            continue
        n = r["phones"]
        p99 = r["tap_to_overlay"]["p99_ms"]
        parts = [
            f"{n:>6} phones: held {r['held']}/{n}",
            f"likes {'equal' if r['likes_equal'] else 'NOT equal'}",
            f"overlay {r['overlay_tallies_per_s']}/s, phones min {r['phone_tallies_per_s']['min']}/s",
            f"p99 {p99} ms ({'≤' if p99 is not None and p99 <= 150 else '>'} 150)",
            f"{r['rss_per_phone_kib']} KiB/phone ({'≤' if (r['rss_per_phone_kib'] or 99) <= 30 else '>'} 30)",
        ]
        ws = _get(data, "websockets", n)
        sio = _get(data, "socketio", n)
        if ws and ws["tap_to_overlay"]["p99_ms"] and p99:
            ratio = p99 / ws["tap_to_overlay"]["p99_ms"]
            parts.append(f"{ratio:.2f}× websockets ({'≤' if ratio <= 1.3 else '>'} 1.3)")
        if sio and sio["tap_to_overlay"]["p99_ms"] and p99:
            ratio = p99 / sio["tap_to_overlay"]["p99_ms"]
            parts.append(f"{ratio:.2f}× socketio ({'≤' if ratio <= 1 / 3 else '>'} 0.33)")
        elif any(x["server"] == "socketio" and x["phones"] == n and "tap_to_overlay" not in x for x in data["results"]):
            parts.append("socketio could not run this point")
        lines.append("  " + "; ".join(parts))
    return "\n".join(lines)


def chart(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.4), dpi=110)
    styles = {"leitai": ("#d7263d", "o"), "websockets": ("#444444", "s"), "socketio": ("#1b6fd1", "^")}
    for server, (color, marker) in styles.items():
        pts = sorted((r["phones"], r) for r in data["results"] if r["server"] == server and "tap_to_overlay" in r)
        if not pts:
            continue
        xs = [r["held"] for _, r in pts]
        ys = [r["tap_to_overlay"]["p99_ms"] for _, r in pts]
        ax.plot(xs, ys, marker=marker, color=color, label=NAMES[server])
        ax2.plot(xs, [r["server_cpu_pct"] for _, r in pts], marker=marker, color=color, label=NAMES[server])
        for (n, r), x, y in zip(pts, xs, ys):
            if r["held"] < 0.95 * n:
                ax.annotate(
                    f"held {r['held']}/{n}", (x, y), textcoords="offset points", xytext=(4, 6), fontsize=7, color=color
                )
        failed = [r for r in data["results"] if r["server"] == server and "tap_to_overlay" not in r]
        if failed:
            first = min(r["phones"] for r in failed)
            ax.annotate(
                f"{NAMES[server]}: could not hold {first:,}",
                xy=(0.02, 0.95 - 0.06 * list(styles).index(server)),
                xycoords="axes fraction",
                fontsize=7,
                color=color,
            )
    ax.axhline(150, color="#888", linestyle="--", linewidth=0.8)
    ax.text(ax.get_xlim()[0], 150, " target 150 ms", fontsize=7, va="bottom", color="#666")
    ax.set_yscale("log")
    ax.set_xlabel("phones held")
    ax.set_ylabel("p99 tap → overlay (ms, log)")
    opts = data["options"]
    ax.set_title(f"p99 tap→overlay at {opts['rate']:,.0f} like-frames/s", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax2.set_xlabel("phones held")
    ax2.set_ylabel("server CPU (% of one core)")
    ax2.set_title("server CPU during the window", fontsize=10)
    ax2.grid(True, alpha=0.3)
    m = data["machine"]
    fig.suptitle(
        f"Leitai vs websockets vs python-socketio — {m['cores']} cores, {m['cpu']}, server pinned to its own core",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


_LINE = re.compile(r"\s*\(([^)]*?):\d+\)$")


def _frame_name(frame: str) -> str:
    """'send (server/hub.py:60)' -> 'send (server/hub.py)'; shortens site-packages paths."""
    frame = frame.strip()
    m = _LINE.search(frame)
    if not m:
        return frame
    func = frame[: m.start()].strip()
    path = m.group(1)
    path = re.sub(r".*site-packages/", "", path)
    path = re.sub(r".*/(server/|bench/)", r"\1", path)
    path = re.sub(r".*/lib/python3\.\d+/", "", path)
    return f"{func} ({path})"


NATIVE_OF_NOTE = ("gc_collect_main", "write (", "writev (", "read (", "send (", "sendmsg (")
IDLE = (
    "SimpleQueue_get",
    "pthread_cond",
    "PyThread_acquire_lock",
    "epoll_wait",
    "select (",
    "sem_wait",
    "_queue_SimpleQueue",
)


def profile_summary(path: Path, top: int = 20) -> dict:
    """Shares of the server's busy samples from py-spy's raw (collapsed) output: by
    leaf frame (self), by innermost Python function, inclusive, and the garbage
    collector's share (native profiles only). Stacks of threads waiting on a lock
    or a queue are idle and left out."""
    self_c: Counter = Counter()
    py_c: Counter = Counter()
    incl: Counter = Counter()
    total = gc = idle = 0
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {}
    for line in text.splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        n = int(n)
        if any(marker in stack for marker in IDLE):
            idle += n
            continue
        raw = [f for f in stack.split(";") if f]
        frames = [_frame_name(f) for f in raw]
        if not frames:
            continue
        total += n
        self_c[frames[-1]] += n
        python = [f for f, r in zip(frames, raw) if ".py:" in r or "<string>" in r]
        py_c[python[-1] if python else frames[-1]] += n
        if any("gc_collect" in f for f in raw):
            gc += n
        for f in {f for f, r in zip(frames, raw) if ".py:" in r or "<string>" in r or r.startswith(NATIVE_OF_NOTE)}:
            incl[f] += n
    if not total:
        return {}

    def share(c: Counter, k: int) -> list:
        return [[f, round(100 * v / total, 1)] for f, v in c.most_common(k)]

    return {
        "samples": total,
        "idle_samples_left_out": idle,
        "gc_pct": round(100 * gc / total, 1),
        "self": share(self_c, top),
        "python": share(py_c, top),
        "inclusive": share(incl, top * 2),
    }
