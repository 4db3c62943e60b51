"""Question clusters: what a new question costs as the queue grows, and how well the
labelled set is clustered (docs/question-desk.md).

    .venv/bin/python -m bench.clusters             # cost: 10,000 synthetic questions, per add at 1k and 10k
    .venv/bin/python -m bench.clusters --quality   # precision and recall on tests/data/questions.jsonl
    .venv/bin/python -m bench.clusters --check 300 # how often the capped index finds the cluster a full scan finds

The synthetic queue is generated from templates in the language of the programme
(subjects x topics x question frames, with addresses, politeness, traditional
characters, full-width forms and typos), with many "me too" repeats of popular
questions, as a live queue has.
"""

import argparse
import itertools
import json
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from server.domain.clusters import Clusterer, Tuning
from server.domain.hanzi import T2S

ROOT = Path(__file__).resolve().parent.parent
LABELLED = ROOT / "tests" / "data" / "questions.jsonl"

# The sides of the demo show (server/demo.py), which the labelled set addresses.
SIDES = {
    "a": {"name": "红方", "guest": "王伟", "org": "澳洋医院党委副书记"},
    "b": {"name": "蓝方", "guest": "杨玭", "org": "市公益组织联合会党支部书记"},
}

# -- the synthetic queue

SUBJECTS = (
    "医院", "社区", "公益组织", "非公企业", "工业园区", "村里", "两新组织", "律师事务所", "外资企业", "学校",
    "小区物业", "网格员", "志愿者协会", "民营医院", "商务楼宇", "快递站点", "养老院", "农贸市场", "机关", "国企",
    "科技公司", "街道", "老旧小区", "乡镇", "合作社",
)  # fmt: skip
TOPICS = (
    "党建", "志愿服务", "社会治理", "党课", "组织生活", "医患关系", "垃圾分类", "加装电梯", "停车难", "养老服务",
    "困难家庭助学", "集体经济", "党员教育", "群众满意度", "矛盾调解", "年轻党员发展", "党务公开", "便民服务",
    "文明创建", "人才引进",
)  # fmt: skip
PEOPLE = ("病人", "居民", "群众", "员工", "老人", "村民", "年轻人", "党员", "志愿者", "孩子")
FRAMES = (
    "{s}的{t}怎么做？", "{s}做{t}有什么经验？", "{t}什么时候能来我们{s}？", "{s}怎样通过{t}让{p}少跑腿？",
    "{s}搞{t}会不会影响正常工作？", "{s}的{t}最难的地方在哪里？", "{s}的{t}怎么让{p}满意？",
    "{s}的{t}和别的地方有什么不同？", "{s}的{p}怎么参与{t}？", "{t}在{s}里是怎么考核的？",
    "{s}的{t}经费从哪里来？", "怎么吸引{p}参加{s}的{t}？", "{s}的{t}有没有好的做法可以推广？",
    "{s}开展{t}需要什么条件？", "{s}的{t}怎样避免走形式？",
)  # fmt: skip
PREFIXES = (
    "",
    "",
    "",
    "请问",
    "请问王书记，",
    "红方嘉宾，",
    "杨会长，",
    "蓝方，",
    "想问一下，",
    "主持人好，",
    "两位书记，",
)
SUFFIXES = ("", "", "", "谢谢！", "急！", "，我们都很关心", "？？")
# simplified -> traditional for the characters of the templates that differ (checked against T2S below)
_PAIRS = (
    "党黨医醫区區组組织織会會么麼时時样樣员員务務经經费費关關系係电電装裝难難养養业業楼樓递遞农農贸貿场場"
    "镇鎮乡鄉国國学學协協师師问問请請书書记記红紅蓝藍宾賓长長杨楊伟偉们們这這让讓参參与與为為开開没沒过過还還"
    "愿願营營来來对對间間应應该該处處办辦条條件件验驗样樣满滿调調发發展展进進门門谁誰课課议議园園传傳单單权權选選"
)
_S2T = {ord(_PAIRS[i]): ord(_PAIRS[i + 1]) for i in range(0, len(_PAIRS), 2) if _PAIRS[i] != _PAIRS[i + 1]}
assert all(T2S.get(t) == s for s, t in _S2T.items()), "a pair that T2S does not fold back"


def _vary(text: str, rng: random.Random) -> str:
    """Another viewer typing the same question: address, politeness, script, width, a typo."""
    text = rng.choice(PREFIXES) + text.rstrip("？") + rng.choice(SUFFIXES)
    roll = rng.random()
    if roll < 0.15:  # traditional characters
        text = text.translate(_S2T)
    elif roll < 0.25:  # full-width question marks and letters
        text = text.replace("?", "？").replace("PK", "ＰＫ")
    elif roll < 0.35 and len(text) > 4:  # a dropped character
        i = rng.randrange(len(text))
        text = text[:i] + text[i + 1 :]
    return text


def synthetic(n: int, seed: int = 1) -> list[tuple[str, str, str]]:
    """`n` questions as (id, text, the question it asks): about 40 % repeat an earlier one."""
    rng = random.Random(seed)
    asked: list[str] = []
    out = []
    for i in range(n):
        if asked and rng.random() < 0.4:
            # popular questions are repeated more: pick among the recent ones, skewed
            base = asked[-1 - int(rng.paretovariate(1.2)) % len(asked)]
        else:
            frame = rng.choice(FRAMES)
            base = frame.format(s=rng.choice(SUBJECTS), t=rng.choice(TOPICS), p=rng.choice(PEOPLE))
            asked.append(base)
        out.append((f"q{i + 1}", _vary(base, rng), base))
    return out


# -- cost


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def cost(n: int, window: int) -> None:
    """Time every add of `n` synthetic questions; print each window's figures.

    CPU time is the thread's own (time.thread_time_ns): what the add costs the
    server, whatever else the machine runs. Wall time includes being preempted.
    """
    questions = synthetic(n)
    desk = Clusterer(SIDES)
    cpu: list[float] = []
    wall: list[float] = []
    work: list[tuple[int, int]] = []
    for qid, text, _ in questions:
        read, compared = desk.stats.postings_read, desk.stats.comparisons
        start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
        desk.add(qid, text)
        cpu.append((time.thread_time_ns() - start_cpu) / 1000)
        wall.append((time.perf_counter_ns() - start) / 1000)
        work.append((desk.stats.postings_read - read, desk.stats.comparisons - compared))
    print(f"{n} synthetic questions, {len(desk.clusters())} clusters; {desk.tuning}")
    print("µs per add (CPU median, p99; wall median, p99), index entries read and similarities computed per add")
    heads = ("adds", "CPU med", "CPU p99", "wall med", "wall p99", "read", "compared")
    print(" | ".join(f"{h:>{w}}" for h, w in zip(heads, (13, 7, 7, 8, 8, 11, 10))))
    for end in sorted({min(window, n), *range(window, n + 1, window)}):
        lo = end - window
        c, w, k = cpu[lo:end], wall[lo:end], work[lo:end]
        print(
            f"{lo + 1:>5}-{end:<7} | {statistics.median(c):>7.0f} | {_percentile(c, 0.99):>7.0f}"
            f" | {statistics.median(w):>8.0f} | {_percentile(w, 0.99):>8.0f}"
            f" | {statistics.mean(r for r, _ in k):>4.0f} (≤{max(r for r, _ in k):>3})"
            f" | {statistics.mean(x for _, x in k):>4.1f} (≤{max(x for _, x in k):>2})"
        )


def check(n: int, sample: int) -> None:
    """For the last `sample` adds of `n`, compare the capped lookup with a scan of every head."""
    questions = synthetic(n)
    desk = Clusterer(SIDES)
    agree = joined_capped = joined_full = 0
    for i, (qid, text, _) in enumerate(questions):
        if i < n - sample:
            desk.add(qid, text)
            continue
        full = _full_scan(desk, text)
        got = desk.add(qid, text)
        capped = got if got != qid else None
        agree += capped == full
        joined_capped += capped is not None
        joined_full += full is not None
    print(
        f"last {sample} of {n} adds: the capped index chose what a full scan chooses in {agree}/{sample};"
        f" joined a cluster: capped {joined_capped}, full scan {joined_full}"
    )


def _full_scan(desk: Clusterer, text: str) -> str | None:
    wide = replace(desk.tuning, probes=10**9, postings=10**9, candidates=10**9)
    saved, desk.tuning = desk.tuning, wide
    try:
        return desk.best_cluster(text)
    finally:
        desk.tuning = saved


# -- quality on the labelled set


def labelled() -> list[dict[str, str]]:
    return [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]


def cluster(rows: list[dict[str, str]], tuning: Tuning | None = None, seed: int | None = None) -> dict[str, str]:
    """Add the rows in file order (seed None) or shuffled with `seed`; return question -> cluster."""
    order = list(rows)
    if seed is not None:
        random.Random(seed).shuffle(order)
    desk = Clusterer(SIDES, tuning)
    for row in order:
        desk.add(row["id"], row["text"])
    return desk.assignments()


def pairwise(rows: list[dict[str, str]], assigned: dict[str, str]) -> tuple[float, float, int, int, int]:
    """Precision and recall of "same cluster" over all pairs of rows, and tp, fp, fn."""
    tp = fp = fn = 0
    for a, b in itertools.combinations(rows, 2):
        same, predicted = a["group"] == b["group"], assigned[a["id"]] == assigned[b["id"]]
        tp += same and predicted
        fp += predicted and not same
        fn += same and not predicted
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0), tp, fp, fn


def averaged(rows: list[dict[str, str]], tuning: Tuning, seeds: range) -> tuple[float, float]:
    runs = [pairwise(rows, cluster(rows, tuning, seed))[:2] for seed in seeds]
    return statistics.mean(p for p, _ in runs), statistics.mean(r for _, r in runs)


def f_beta(p: float, r: float, beta: float = 0.5) -> float:
    return (1 + beta**2) * p * r / (beta**2 * p + r) if p + r else 0.0


THRESHOLDS = [round(0.30 + 0.02 * i, 2) for i in range(21)]


def best_threshold(rows: list[dict[str, str]], seeds: range) -> float:
    scored = [(f_beta(*averaged(rows, replace(Tuning(), threshold=t), seeds)), t) for t in THRESHOLDS]
    return max(scored)[1]


def quality(seeds: range) -> None:
    rows = labelled()
    groups = Counter(r["group"] for r in rows)
    positives = sum(n * (n - 1) // 2 for n in groups.values())
    print(
        f"{len(rows)} questions, {sum(1 for n in groups.values() if n > 1)} groups of 2+,"
        f" {sum(1 for n in groups.values() if n == 1)} singletons; {positives} same-question pairs"
        f" of {len(rows) * (len(rows) - 1) // 2}; averaged over {len(seeds)} shuffled orders"
    )
    print(f"{'threshold':>9} | {'precision':>9} | {'recall':>6} | {'F1':>5} | {'F0.5':>5}")
    for t in THRESHOLDS:
        p, r = averaged(rows, replace(Tuning(), threshold=t), seeds)
        mark = "  <- default" if t == Tuning().threshold else ""
        print(f"{t:>9.2f} | {p:>9.3f} | {r:>6.3f} | {2 * p * r / (p + r):>5.3f} | {f_beta(p, r):>5.3f}{mark}")
    print()
    _by_kind(rows, seeds)
    _near_misses(rows, seeds)
    _halves(rows, seeds)


def _by_kind(rows: list[dict[str, str]], seeds: range) -> None:
    """How often each kind of rephrasing ends in the cluster of its group's first phrasing."""
    base = {r["group"]: r["id"] for r in rows if r.get("kind") == "base"}
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for seed in seeds:
        assigned = cluster(rows, None, seed)
        for r in rows:
            kind = r.get("kind")
            if kind and kind != "base":
                totals[kind] += 1
                hits[kind] += assigned[r["id"]] == assigned[base[r["group"]]]
    for kind in ("surface", "order", "reword"):
        n = totals[kind] // len(seeds)
        print(f"{kind:>8} rephrasings ({n:>3}): with their group's first phrasing {hits[kind] / totals[kind]:.0%}")


def _near_misses(rows: list[dict[str, str]], seeds: range) -> None:
    """Pairs of questions from a group and the group it is marked a near miss of: kept apart?"""
    by_group: dict[str, list[str]] = {}
    for r in rows:
        by_group.setdefault(r["group"], []).append(r["id"])
    pairs = [
        (a, b)
        for r in rows
        if r.get("near") and r.get("kind") in (None, "base")
        for a in by_group[r["group"]]
        for b in by_group[r["near"]]
    ]
    apart = 0
    for seed in seeds:
        assigned = cluster(rows, None, seed)
        apart += sum(assigned[a] != assigned[b] for a, b in pairs)
    kept = apart / (len(pairs) * len(seeds))
    print(f"near misses: {len(pairs)} pairs across groups marked as near misses of each other, kept apart {kept:.0%}")


def _halves(rows: list[dict[str, str]], seeds: range) -> None:
    """Choose the threshold on half the labelled set, measure on the other half (and the other
    way). A group and its near misses stay in the same half, so each half keeps its hard pairs."""
    family = {r["group"]: r["group"] for r in rows}

    def root(g: str) -> str:
        while family[g] != g:
            g = family[g]
        return g

    for r in rows:
        if r.get("near"):
            family[root(r["group"])] = root(r["near"])
    names = sorted({root(g) for g in family})
    half = [{g for g in family if names.index(root(g)) % 2 == k} for k in (0, 1)]
    for k in (0, 1):
        tune = [r for r in rows if r["group"] in half[k]]
        test = [r for r in rows if r["group"] not in half[k]]
        t = best_threshold(tune, seeds)
        p, r = averaged(test, replace(Tuning(), threshold=t), seeds)
        print(
            f"half {k} ({len(tune)} questions): threshold chosen on it {t:.2f};"
            f" on the other half ({len(test)}) precision {p:.3f}, recall {r:.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clusters", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="synthetic questions (cost and --check)")
    parser.add_argument("--window", type=int, default=1000, help="adds per row of the cost table")
    parser.add_argument("--quality", action="store_true", help="precision and recall on the labelled set")
    parser.add_argument("--seeds", type=int, default=10, help="shuffled orders averaged for --quality")
    parser.add_argument("--check", type=int, default=0, metavar="K", help="compare the last K adds with a full scan")
    args = parser.parse_args(argv)
    if args.quality:
        quality(range(args.seeds))
    elif args.check:
        check(args.n, args.check)
    else:
        cost(args.n, args.window)
    return 0


if __name__ == "__main__":
    sys.exit(main())
