"""What producers read: one episode's numbers and series, season totals, the export.

Pure: a `ShowState` (with its counters) and the store's timeline in, plain
data out. No I/O, no Starlette; times are milliseconds since the epoch and are
only turned into text by the helpers at the bottom, in the time zone the
caller passes.

The timeline holds every committed event (`question`, `round`, `show`,
`points`) under its `seq`, and a `sample` of the counters every few seconds
while sockets are connected: `{"likes": {a, b}, "votes": {a, b}, "viewers": n,
"round": i}`. Likes in a sample are cumulative, so likes per minute are the
differences between samples. A rehearsal reset zeroes the counters: the
report's series start after the last reset, and the report says so.
"""

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

import orjson

from .domain import verdict
from .domain.questions import ANSWERED, PUBLIC, STATUSES
from .domain.show import ShowState

SIDES = ("a", "b")
AIRED = ("live", "ended")
MINUTE_MS = 60_000


# -- one episode ------------------------------------------------------------------


@dataclass(frozen=True)
class EpisodeStats:
    """One row of the season table."""

    slug: str
    title: str
    date: str
    status: str
    created: int
    sides: dict
    likes: dict
    viewers: int
    peak_viewers: int
    unique_viewers: int
    votes: int
    rounds: int
    rounds_won: dict
    points: dict
    questions: dict  # status -> count
    rehearsal: int

    @property
    def likes_total(self) -> int:
        return sum(self.likes.get(s, 0) for s in SIDES)

    @property
    def received(self) -> int:
        return sum(self.questions.values())

    @property
    def approved(self) -> int:
        """Approved in any form: approved, featured (on air) or answered."""
        return sum(self.questions.get(s, 0) for s in PUBLIC)

    @property
    def answered(self) -> int:
        return self.questions.get(ANSWERED, 0)

    @property
    def aired(self) -> bool:
        return self.status in AIRED


def question_counts(state: ShowState) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for q in state.questions.values():
        counts[q.status] = counts.get(q.status, 0) + 1
    return counts


def total_votes(state: ShowState) -> int:
    """Every finished round's votes, plus the open round's so far."""
    done = sum(int(r.get("votes", {}).get(s, 0)) for r in state.rounds for s in SIDES)
    live = sum(state.counters.votes.get(s, 0) for s in SIDES) if state.round.open else 0
    return done + live


def episode_stats(state: ShowState, viewers_now: int | None = None) -> EpisodeStats:
    c = state.counters
    return EpisodeStats(
        slug=state.slug,
        title=state.title,
        date=state.date,
        status=state.status,
        created=state.created,
        sides=state.sides,
        likes=dict(c.likes),
        viewers=c.viewers if viewers_now is None else viewers_now,
        peak_viewers=c.peak_viewers,
        unique_viewers=c.unique_viewers,
        votes=total_votes(state),
        rounds=len(state.rounds) + (1 if state.round.open else 0),
        rounds_won=dict(state.rounds_won),
        points=dict(state.points),
        questions=question_counts(state),
        rehearsal=state.rehearsal,
    )


# -- the season -----------------------------------------------------------------------


@dataclass(frozen=True)
class SeasonTotals:
    """Totals over the aired episodes (status live or ended); drafts are listed, not counted."""

    episodes: int  # every episode, drafts included
    aired: int
    likes: int
    peak_max: int
    peak_sum: int
    unique_sum: int
    votes: int
    received: int
    approved: int
    answered: int


def season_totals(stats: list[EpisodeStats]) -> SeasonTotals:
    aired = [s for s in stats if s.aired]
    return SeasonTotals(
        episodes=len(stats),
        aired=len(aired),
        likes=sum(s.likes_total for s in aired),
        peak_max=max((s.peak_viewers for s in aired), default=0),
        peak_sum=sum(s.peak_viewers for s in aired),
        unique_sum=sum(s.unique_viewers for s in aired),
        votes=sum(s.votes for s in aired),
        received=sum(s.received for s in aired),
        approved=sum(s.approved for s in aired),
        answered=sum(s.answered for s in aired),
    )


def episode_order(stats: list[EpisodeStats]) -> list[EpisodeStats]:
    """Newest first: by date, then by creation time."""
    return sorted(stats, key=lambda s: (s.date or "", s.created), reverse=True)


# -- the per-episode report --------------------------------------------------------------


@dataclass(frozen=True)
class RoundRow:
    index: int
    topic: str
    status: str  # finished, running, paused
    duration_s: int
    run_ms: int | None  # time the round actually ran (None: unknown)
    started: int | None  # when it first started
    votes: dict
    winner: str | None
    held: dict = field(default_factory=dict)  # votes held back, by reason (domain.integrity)
    floor: dict = field(default_factory=dict)  # speaking time per holder (ms)
    sealed: bool = False

    @property
    def held_total(self) -> int:
        return sum(int(n) for n in self.held.values())


@dataclass(frozen=True)
class QuestionRow:
    id: str
    created: int
    name: str
    text: str
    status: str
    upvotes: int
    flagged: bool


@dataclass
class Report:
    stats: EpisodeStats
    likes_per_minute: dict[str, list[tuple[int, int | None]]]  # side -> (minute start, likes)
    viewers: list[tuple[int, int | None]]  # (ts, viewers); None breaks the line
    rounds: list[RoundRow]
    questions: list[QuestionRow]
    by_state: dict[str, int]
    reset_at: int = 0  # ms of the last rehearsal reset (0: never)
    before_reset: int = 0  # timeline entries before it, left out of the series
    entries: int = 0  # timeline entries in all
    samples: int = 0  # samples in the series
    first_ts: int | None = None
    last_ts: int | None = None
    events: list[dict] = field(default_factory=list)  # events after the reset, for the log

    @property
    def floor_totals(self) -> dict[str, int]:
        """Each holder's speaking time over the show (ms): the rounds' times summed."""
        out = dict.fromkeys(verdict.HOLDERS, 0)
        for r in self.rounds:
            for who in out:
                out[who] += int(r.floor.get(who) or 0)
        return out


def since_reset(timeline: list[dict]) -> tuple[int, int]:
    """(position just after the last rehearsal-reset event, its time); (0, 0) if none."""
    for i in range(len(timeline) - 1, -1, -1):
        e = timeline[i]
        if e.get("type") == "show" and (e.get("show") or {}).get("rehearsal"):
            return i + 1, int(e["show"]["rehearsal"])
    return 0, 0


def likes_per_minute(samples: list[dict]) -> dict[str, list[tuple[int, int | None]]]:
    """Per side, likes in each wall-clock minute, from the cumulative likes in the samples.

    A sample with fewer likes than the one before follows a reset: it counts from 0.
    Minutes with no sample (nobody connected) break the line with a None.
    """
    per_minute: dict[int, dict[str, int]] = {}
    prev = {s: 0 for s in SIDES}
    for sample in samples:
        likes = sample.get("likes") or {}
        minute = int(sample["ts"]) // MINUTE_MS * MINUTE_MS
        bucket = per_minute.setdefault(minute, {s: 0 for s in SIDES})
        for s in SIDES:
            cur = int(likes.get(s, 0))
            bucket[s] += cur - prev[s] if cur >= prev[s] else cur
            prev[s] = cur
    out: dict[str, list[tuple[int, int | None]]] = {s: [] for s in SIDES}
    last = None
    for minute in sorted(per_minute):
        if last is not None and minute - last > MINUTE_MS:
            for s in SIDES:
                out[s].append((last + MINUTE_MS, None))
        for s in SIDES:
            out[s].append((minute, per_minute[minute][s]))
        last = minute
    return out


def viewers_series(samples: list[dict], sample_ms: int) -> list[tuple[int, int | None]]:
    """Viewers at each sample; a gap longer than three sample periods breaks the line."""
    out: list[tuple[int, int | None]] = []
    last = None
    for sample in samples:
        ts = int(sample["ts"])
        if last is not None and ts - last > 3 * sample_ms:
            out.append((last + sample_ms, None))
        out.append((ts, int(sample.get("viewers", 0))))
        last = ts
    return out


def round_rows(state: ShowState, events: list[dict], now: int) -> list[RoundRow]:
    """The finished rounds (state.rounds) and the open one, with start and run times
    from the round events."""
    started: dict[int, int] = {}
    run: dict[int, int] = {}
    for e in events:
        if e.get("type") != "round":
            continue
        r = e.get("round") or {}
        index = int(r.get("index", 0))
        if not index:
            continue
        if r.get("status") == "running" and index not in started:
            started[index] = int(e["ts"])
        if r.get("status") == "finished":
            run[index] = int(r.get("elapsed_ms", 0))
    rows = [
        RoundRow(
            int(r["index"]),
            str(r.get("topic", "")),
            "finished",
            int(r.get("duration_s", 0)),
            run.get(int(r["index"])),
            started.get(int(r["index"])),
            dict(r.get("votes") or {}),
            r.get("winner"),
            dict(r.get("held") or {}) if isinstance(r.get("held"), dict) else {},
            dict(r.get("floor") or {}),
            bool(r.get("sealed")),
        )
        for r in state.rounds
    ]
    rnd = state.round
    if rnd.open:
        rows.append(
            RoundRow(
                rnd.index,
                rnd.topic,
                rnd.status,
                rnd.duration_s,
                rnd.run_ms(now),
                started.get(rnd.index),
                {} if state.sealed else dict(state.counters.votes),  # a sealed round: revealed at its end
                None,
                dict(state.counters.held_reasons),
                verdict.floor_totals(state.floor, now),
                rnd.sealed,
            )
        )
    return rows


def build(state: ShowState, timeline: list[dict], now: int, sample_ms: int = 10_000) -> Report:
    start, reset_at = since_reset(timeline)
    after = timeline[start:]
    samples = [e for e in after if e.get("type") == "sample"]
    events = [e for e in after if e.get("type") != "sample"]
    questions = [
        QuestionRow(q.id, q.created, q.name, q.text, q.status, q.upvotes, q.flagged)
        for q in sorted(state.questions.values(), key=lambda q: (q.created, q.id))
    ]
    return Report(
        stats=episode_stats(state),
        likes_per_minute=likes_per_minute(samples),
        viewers=viewers_series(samples, sample_ms),
        rounds=round_rows(state, after, now),
        questions=questions,
        by_state=question_counts(state),
        reset_at=reset_at,
        before_reset=start,
        entries=len(timeline),
        samples=len(samples),
        first_ts=int(timeline[0]["ts"]) if timeline else None,
        last_ts=int(timeline[-1]["ts"]) if timeline else None,
        events=events,
    )


# -- the export ---------------------------------------------------------------------------

CSV_FIXED = ("seq", "ts", "time", "type")
CSV_EXTRA = (
    "likes_a",
    "likes_b",
    "votes_a",
    "votes_b",
    "viewers",
    "round",
    "question_id",
    "question_status",
    "question_text",
)
CSV_COLUMNS = (*CSV_FIXED, "data", *CSV_EXTRA)


def iso_utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def export_entries(timeline: list[dict]) -> list[dict]:
    """The timeline as exported: each entry with its `seq`, `ts` (ms), `time` (ISO 8601
    UTC) and `type` first, then the event's own fields."""
    out = []
    for e in timeline:
        ts = int(e["ts"])
        body = {k: v for k, v in e.items() if k not in CSV_FIXED}
        out.append({"seq": int(e["seq"]), "ts": ts, "time": iso_utc(ts), "type": e["type"], **body})
    return out


def _cell(value: str) -> str:
    """A text cell a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _extras(entry: dict) -> dict[str, object]:
    """Readable columns for spreadsheets; the `data` column is the authoritative one."""
    extra: dict[str, object] = dict.fromkeys(CSV_EXTRA, "")
    if entry["type"] == "sample":
        likes, votes = entry.get("likes") or {}, entry.get("votes") or {}
        extra.update(
            likes_a=likes.get("a", ""),
            likes_b=likes.get("b", ""),
            votes_a=votes.get("a", ""),
            votes_b=votes.get("b", ""),
            viewers=entry.get("viewers", ""),
            round=entry.get("round", ""),
        )
    elif entry["type"] == "question":
        q = entry.get("question") or {}
        extra.update(
            question_id=q.get("id", ""),
            question_status=q.get("status", ""),
            question_text=_cell(str(q.get("text", ""))),
        )
    elif entry["type"] == "round":
        r = entry.get("round") or {}
        extra.update(round=r.get("index", ""))
        if entry.get("rounds"):
            last = entry["rounds"][-1]
            votes = last.get("votes") or {}
            if r.get("status") == "finished":
                extra.update(votes_a=votes.get("a", ""), votes_b=votes.get("b", ""))
    elif entry["type"] == "points":
        pass
    return extra


def to_csv(entries: list[dict]) -> str:
    """One row per entry: seq, ts, time, type, `data` (the rest of the entry as JSON with
    sorted keys) and a few readable columns. `from_csv` gives the entries back exactly."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        data = {k: v for k, v in e.items() if k not in CSV_FIXED}
        extra = _extras(e)
        writer.writerow(
            [
                e["seq"],
                e["ts"],
                e["time"],
                e["type"],
                orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode(),
                *[extra[c] for c in CSV_EXTRA],
            ]
        )
    return buf.getvalue()


def from_csv(text: str) -> list[dict]:
    """The entries of a `to_csv` export (a leading byte-order mark is fine)."""
    rows = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    return [
        {"seq": int(r["seq"]), "ts": int(r["ts"]), "time": r["time"], "type": r["type"], **orjson.loads(r["data"])}
        for r in rows
    ]


# -- text for people -----------------------------------------------------------------------


def thousands(n: int | float) -> str:
    return f"{int(n):,}"


def compact(n: int, lang: str) -> str:
    """A headline number: 400123 -> 40万+ / 400K+; 20000 -> 2万 / 20K; below 10,000 exact."""
    n = int(n)
    if lang != "en":
        for unit, name in ((100_000_000, "亿"), (10_000, "万")):
            if n >= unit:
                return _round_down(n, unit, name)
        return thousands(n)
    for unit, name in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if n >= unit and (n >= 10_000 or unit > 1_000):
            return _round_down(n, unit, name)
    return thousands(n)


def _round_down(n: int, unit: int, name: str) -> str:
    if n < 10 * unit:  # one decimal, rounded down: 15300 -> 1.5万+
        tenths = n * 10 // unit
        text = f"{tenths // 10}" + (f".{tenths % 10}" if tenths % 10 else "")
        exact = tenths * unit == n * 10
    else:
        whole = n // unit
        text, exact = str(whole), whole * unit == n
    return f"{text}{name}" + ("" if exact else "+")


def local(ms: int, tz: tzinfo | None) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz or UTC)


def clock(ms: int | None, tz: tzinfo | None, seconds: bool = False) -> str:
    if not ms:
        return "—"
    return local(ms, tz).strftime("%H:%M:%S" if seconds else "%H:%M")


def stamp(ms: int | None, tz: tzinfo | None) -> str:
    if not ms:
        return "—"
    return local(ms, tz).strftime("%Y-%m-%d %H:%M")


def duration(ms: int | None) -> str:
    if ms is None:
        return "—"
    s = max(0, int(ms) // 1000)
    return f"{s // 60}:{s % 60:02d}"


def utc_offset(tz: tzinfo | None, at_ms: int) -> str:
    off = local(at_ms, tz).utcoffset()
    minutes = int(off.total_seconds() // 60) if off else 0
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
