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
    if r.get("probe"):
        name += f" [{r['probe']}{'' if r.get('on_time', True) or r['probe'] == 'fanout' else ', late'}]"
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
    if data["options"].get("capacity"):
        rate_text = f"capacity mode: {data['options']['cap_per_phone']:g} like-frame/s per phone"
    else:
        rate_text = f"{rate:,.0f} like-frames/s"
    title = f"{rate_text} for {dur:g} s per point; {data['machine']['cores']} cores; every run"
    return "\n".join([title, "", HEAD, sep, *(row(r) for r in rows)])


def _get(data: dict, server: str, phones: int) -> dict | None:
    for r in data["results"]:
        if r["server"] == server and r["phones"] == phones and "tap_to_overlay" in r:
            return r
    return None


def _med(values: list) -> float | None:
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2


def _spread(values: list, fmt: str = "{:.0f}") -> str:
    """'median (min–max)', or the one value."""
    v = [x for x in values if x is not None]
    if not v:
        return "—"
    if len(v) == 1:
        return fmt.format(v[0])
    return f"{fmt.format(_med(v))} ({fmt.format(min(v))}–{fmt.format(max(v))})"


def _groups(data: dict, probe: str | None) -> dict[tuple[int, str], list[dict]]:
    out: dict[tuple[int, str], list[dict]] = {}
    for r in data["results"]:
        if r.get("probe") != probe or "tap_to_overlay" not in r:
            continue
        out.setdefault((r["phones"], r["server"]), []).append(r)
    order = list(NAMES)
    return dict(sorted(out.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1]) if kv[0][1] in order else 9)))


def spreads(data: dict) -> str:
    """Medians and min–max over the repeated runs of each point (sweep mode)."""
    groups = _groups(data, None)
    if not groups or max(len(v) for v in groups.values()) < 2:
        return ""
    lines = [
        "Over the repeated runs: median (min–max)",
        "",
        "| server | phones | runs | tap→overlay p50 ms | p99 ms | overlay tallies/s | phone tallies/s mean "
        "| server CPU % | µs CPU / delivered tally | KiB / idle phone | likes sent = counted "
        "| other load CPU % (max) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (n, server), rs in groups.items():
        counted = sum(1 for r in rs if r["likes_equal"])
        lines.append(
            f"| {NAMES.get(server, server)} | {n:,} | {len(rs)} "
            f"| {_spread([r['tap_to_overlay']['p50_ms'] for r in rs])} "
            f"| {_spread([r['tap_to_overlay']['p99_ms'] for r in rs])} "
            f"| {_spread([r['overlay_tallies_per_s'] for r in rs], '{:.1f}')} "
            f"| {_spread([r['phone_tallies_per_s']['mean'] for r in rs], '{:.2f}')} "
            f"| {_spread([r['server_cpu_pct'] for r in rs])} "
            f"| {_spread([r.get('cpu_us_per_delivery') for r in rs], '{:.1f}')} "
            f"| {_spread([r['rss_per_phone_kib'] for r in rs], '{:.1f}')} "
            f"| {counted}/{len(rs)} runs | {_f(max((r.get('other_cpu_pct') or 0) for r in rs))} |"
        )
    return "\n".join(lines)


def _ratio(a: list[dict], b: list[dict], get) -> str:
    """Ratio of the medians, and the range of the ratios run by run (run i with run i)."""
    ma, mb = _med([get(r) for r in a]), _med([get(r) for r in b])
    if not ma or not mb:
        return "—"
    paired = [get(x) / get(y) for x, y in zip(a, b) if get(x) and get(y)]
    text = f"{ma / mb:.2f}×"
    if len(paired) > 1:
        text += f" ({min(paired):.2f}–{max(paired):.2f})"
    return text


def ratios(data: dict) -> str:
    """Leitai against each baseline at each phone count, from the same invocation."""
    groups = _groups(data, None)
    rows = []
    for (n, server), rs in groups.items():
        if server != "leitai":
            continue
        for other in ("websockets", "socketio"):
            os_ = groups.get((n, other))
            if not os_:
                continue
            rows.append(
                f"| {n:,} | {NAMES[other]} | {len(rs)} / {len(os_)} "
                f"| {_ratio(rs, os_, lambda r: r['tap_to_overlay']['p99_ms'])} "
                f"| {_ratio(rs, os_, lambda r: r['tap_to_overlay']['p50_ms'])} "
                f"| {_ratio(rs, os_, lambda r: r['server_cpu_pct'])} "
                f"| {_ratio(rs, os_, lambda r: r.get('cpu_us_per_delivery'))} "
                f"| {_ratio(rs, os_, lambda r: r['rss_per_phone_kib'])} |"
            )
    if not rows:
        return ""
    return "\n".join(
        [
            "Leitai ÷ baseline, same invocation: ratio of the medians (range of the run-by-run ratios)",
            "",
            "| phones | against | runs | p99 tap→overlay | p50 | server CPU | CPU per delivered tally "
            "| KiB / idle phone |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )


def fanout(data: dict) -> str:
    """The fan-out probe: deliveries per CPU-second and memory per idle phone."""
    groups = _groups(data, "fanout")
    if not groups:
        return ""
    lines = [
        "Fan-out probe: median (min–max) over the runs",
        "",
        "| server | phones | runs | like-frames/s | tallies delivered/s | server CPU % | idle CPU % "
        "| deliveries per CPU-second | per CPU-second less idle | µs CPU / delivery | KiB / idle phone |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (n, server), rs in groups.items():
        lines.append(
            f"| {NAMES.get(server, server)} | {n:,} | {len(rs)} "
            f"| {_spread([r['frames_in_per_s'] for r in rs])} "
            f"| {_spread([r['deliveries_per_s'] for r in rs])} "
            f"| {_spread([r['server_cpu_pct'] for r in rs], '{:.1f}')} "
            f"| {_spread([r['server_idle_cpu_pct'] for r in rs], '{:.1f}')} "
            f"| {_spread([r.get('deliveries_per_cpu_s') for r in rs], '{:,.0f}')} "
            f"| {_spread([r.get('deliveries_per_net_cpu_s') for r in rs], '{:,.0f}')} "
            f"| {_spread([r.get('cpu_us_per_delivery') for r in rs], '{:.1f}')} "
            f"| {_spread([r['rss_per_phone_kib'] for r in rs], '{:.1f}')} |"
        )
    for (n, server), rs in groups.items():
        if server != "leitai":
            continue
        for other in ("websockets", "socketio"):
            os_ = groups.get((n, other))
            if os_:
                lines.append(
                    f"\nLeitai ÷ {NAMES[other]}, deliveries per CPU-second at {n:,} phones: "
                    f"{_ratio(rs, os_, lambda r: r.get('deliveries_per_cpu_s'))}; "
                    f"less idle: {_ratio(rs, os_, lambda r: r.get('deliveries_per_net_cpu_s'))}"
                )
    return "\n".join(lines)


def capacity(data: dict) -> str:
    caps = data.get("capacity") or []
    if not caps:
        return ""
    o = data["options"]
    lines = [
        f"Capacity: the most phones one pinned core sustains with every tick on time "
        f"({o['cap_per_phone']:g} like-frame/s per phone; overlays ≥ 98 % and phones ≥ 97.5 % of their tally "
        f"rate, p99 tap→overlay ≤ {o['p99_bound_ms']:g} ms, every phone held, every like counted)",
        "",
        "| server | phones sustained | first count that failed (why) | like-frames/s | tallies delivered/s "
        "| server CPU % | µs CPU / delivered tally | p99 ms | KiB / idle phone | probes (disturbed) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in caps:
        why = "; ".join(c.get("why_failed", []))
        first = "none up to the limit" if c["capped"] else f"{c['first_failed']:,} ({why})"
        got = f"{c['phones']:,}" + (" (the limit)" if c["capped"] and c["phones"] else "")
        lines.append(
            f"| {NAMES.get(c['server'], c['server'])} | {got} | {first} "
            f"| {_f(c.get('frames_in_per_s'), '{:,.0f}')} | {_f(c.get('deliveries_per_s'), '{:,.0f}')} "
            f"| {_f(c.get('server_cpu_pct'))} | {_f(c.get('cpu_us_per_delivery'), '{:.1f}')} "
            f"| {_f(c.get('p99_ms'))} | {_f(c.get('rss_per_phone_kib'), '{:.1f}')} "
            f"| {c['probes']} ({c.get('disturbed_probes', 0)}) |"
        )
    return "\n".join(lines)


def targets(data: dict) -> str:
    """Issue 17's targets, from what this run measured."""
    lines = ["Targets (issue 17):"]
    fo = _groups(data, "fanout")
    for (n, server), rs in fo.items():
        ws = fo.get((n, "websockets"))
        if server == "leitai" and ws:
            ma = _med([r.get("deliveries_per_cpu_s") for r in rs])
            mb = _med([r.get("deliveries_per_cpu_s") for r in ws])
            if ma and mb:
                lines.append(
                    f"  fan-out at {n:,} phones: {ma / mb:.2f}× broadcast()'s deliveries per CPU-second "
                    f"({'≥' if ma / mb >= 1.5 else '<'} 1.5)"
                )
    for c in data.get("capacity") or []:
        if c["server"] == "leitai":
            lines.append(
                f"  one core: {c['phones']:,} phones on time{' (the fd limit)' if c['capped'] else ''} "
                f"({'≥' if c['phones'] >= 15000 else '<'} 15,000)"
            )
    kib = [r["rss_per_phone_kib"] for r in data["results"] if r["server"] == "leitai" and r.get("rss_per_phone_kib")]
    if kib:
        m = _med(kib)
        lines.append(f"  memory: {m:.1f} KiB per idle phone, median of {len(kib)} ({'≤' if m <= 18 else '>'} 18)")
    for (n, server), rs in _groups(data, None).items():
        if server != "leitai":
            continue
        p99 = _med([r["tap_to_overlay"]["p99_ms"] for r in rs])
        ok = sum(1 for r in rs if r.get("on_time"))
        lines.append(
            f"  {n:>6,} phones: on time in {ok}/{len(rs)} runs; p99 {_f(p99)} ms; "
            f"likes counted in {sum(1 for r in rs if r['likes_equal'])}/{len(rs)}"
        )
    return "\n".join(lines)


def chart(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.4), dpi=110)
    styles = {"leitai": ("#d7263d", "o"), "websockets": ("#444444", "s"), "socketio": ("#1b6fd1", "^")}
    for server, (color, marker) in styles.items():
        # one point per phone count: the median over repeated runs, min–max as error bars
        by_n: dict[int, list[dict]] = {}
        for r in data["results"]:
            if r["server"] == server and "tap_to_overlay" in r and not r.get("probe"):
                by_n.setdefault(r["phones"], []).append(r)
        if not by_n:
            continue
        ns = sorted(by_n)
        xs = [_med([r["held"] for r in by_n[n]]) for n in ns]
        for key, axis in ((lambda r: r["tap_to_overlay"]["p99_ms"], ax), (lambda r: r["server_cpu_pct"], ax2)):
            ys = [_med([key(r) for r in by_n[n]]) for n in ns]
            lo = [y - min(key(r) for r in by_n[n]) for y, n in zip(ys, ns)]
            hi = [max(key(r) for r in by_n[n]) - y for y, n in zip(ys, ns)]
            axis.errorbar(xs, ys, yerr=[lo, hi], marker=marker, color=color, label=NAMES[server], capsize=3)
        for n, x in zip(ns, xs):
            held = min(r["held"] for r in by_n[n])
            if held < 0.95 * n:
                y = _med([r["tap_to_overlay"]["p99_ms"] for r in by_n[n]])
                ax.annotate(
                    f"held {held}/{n}", (x, y), textcoords="offset points", xytext=(4, 6), fontsize=7, color=color
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
    ax.set_ylabel("p99 tap → overlay (ms, log; median, min–max)")
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
