"""Embedded store: state in memory, made durable in SQLite (WAL) by one writer thread.

Durable before visible: every write is committed to SQLite before memory,
`seq` or any socket changes, and a write that fails changes nothing anyone can
see (the caller gets `StoreUnavailable`). Commits of one show are queued and
group-committed: whatever arrives while one transaction commits goes into the
next one, numbered in arrival order, so a burst costs a handful of
transactions, not one each. Counters are written as increments in the same
order as memory applies them, so the two never disagree.
"""

import asyncio
import logging
import queue
import sqlite3
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..domain import integrity, verdict
from ..domain.integrity import COUNTED, HELD, Ballot, VoteCounts, Voter
from ..domain.likes import split
from ..domain.ratelimit import Buckets, TokenBucket
from ..domain.show import Counters, OrAbsent, ShowState, fields_of, is_public
from ..domain.verdict import StanceCounts
from ..settings import Settings
from . import OTHER, STANCE_BOXES, Box, Conflict, DeviceState, Replies, Store, StoreUnavailable
from .lock import lock_data_dir
from .replies import MemoryReplies

log = logging.getLogger("leitai.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS field (show TEXT, name TEXT, value BLOB, PRIMARY KEY (show, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counter (show TEXT, name TEXT, value INTEGER, PRIMARY KEY (show, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vote (show TEXT, round INTEGER, device TEXT, side TEXT,
                                 PRIMARY KEY (show, round, device)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS upvote (show TEXT, question TEXT, device TEXT,
                                   PRIMARY KEY (show, question, device)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device (show TEXT, device TEXT, first INTEGER DEFAULT 0,
                                   PRIMARY KEY (show, device)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS timeline (n INTEGER PRIMARY KEY AUTOINCREMENT, show TEXT, seq INTEGER, ts INTEGER,
                                     data BLOB);
CREATE INDEX IF NOT EXISTS timeline_show ON timeline (show, n);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;
"""

SET_FIELD = "INSERT OR REPLACE INTO field VALUES (?, ?, ?)"
SET_COUNTER = "INSERT OR REPLACE INTO counter VALUES (?, ?, ?)"
ADD_COUNTER = (
    "INSERT INTO counter VALUES (?, ?, ?) ON CONFLICT (show, name) DO UPDATE SET value = value + excluded.value"
)
MAX_COUNTER = (
    "INSERT INTO counter VALUES (?, ?, ?) ON CONFLICT (show, name) DO UPDATE SET value = max(value, excluded.value)"
)
ADD_TIMELINE = "INSERT INTO timeline (show, seq, ts, data) VALUES (?, ?, ?, ?)"

Statements = list[tuple[str, tuple[Any, ...]]]
Done = Callable[[BaseException | None], None]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Show:
    fields: dict[str, bytes]
    seq: int = 0
    pseq: int = 0
    qid: int = 0
    peak: int = 0
    likes: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    ballots: dict[Box, dict[str, Ballot]] = field(default_factory=lambda: defaultdict(dict))
    vcount: dict[Box, VoteCounts] = field(default_factory=lambda: defaultdict(VoteCounts.empty))
    net_counted: dict[Box, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    net_reserved: dict[Box, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))  # being written
    matrix: dict[str, dict[str, int]] = field(default_factory=verdict.empty_matrix)  # stances pre -> post
    bursts: dict[tuple[str, str, int], int] = field(default_factory=dict)  # (box:network, side, minute)
    upvoters: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    device_upvotes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    devices: dict[str, int] = field(default_factory=dict)  # device -> first seen (ms)
    replies: MemoryReplies | None = None
    pending: list["_Commit"] = field(default_factory=list)  # commits waiting for the next transaction
    flushing: bool = False


@dataclass
class _Commit:
    events: list[dict[str, Any]]
    expect: dict[str, bytes | None] | None
    future: asyncio.Future[int]


class _Writer(threading.Thread):
    """The one thread that writes SQLite; group-commits whatever is queued."""

    def __init__(self, path: str, synchronous: str, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(name="leitai-sqlite", daemon=True)
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.failing = ""  # the last transaction's error, "" once one commits
        self.loop = loop
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        self.db.executescript(SCHEMA)
        try:  # data made before devices had a first-seen time
            self.db.execute("ALTER TABLE device ADD COLUMN first INTEGER DEFAULT 0")
        except sqlite3.OperationalError:
            pass  # the column is there

    def submit(self, stmts: Statements, done: Done | None) -> None:
        self.jobs.put((stmts, done))

    def run(self) -> None:
        stop = False
        while not stop:
            batch = [self.jobs.get()]
            while True:
                try:
                    batch.append(self.jobs.get_nowait())
                except queue.Empty:
                    break
            if batch[-1] is None:
                stop = True
            jobs = [job for job in batch if job is not None]
            error: BaseException | None = None
            try:
                self.db.execute("BEGIN")
                for stmts, _ in jobs:
                    for sql, params in stmts:
                        self.db.execute(sql, params)
                self.db.execute("COMMIT")
                self.failing = ""
            except Exception as exc:  # disk full, I/O error: tell every waiter
                log.error("sqlite write failed: %s", exc)
                error = exc
                self.failing = str(exc) or type(exc).__name__
                try:
                    self.db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            dones = [done for _, done in jobs if done is not None]
            if dones and not self.loop.is_closed():
                self.loop.call_soon_threadsafe(_finish, dones, error)
        self.db.close()

    def stop(self) -> None:
        self.jobs.put(None)
        self.join()


def _finish(dones: list[Done], error: BaseException | None) -> None:
    for done in dones:
        done(error)


class EmbeddedStore(Store):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.path = str(settings.data_path() / "leitai.sqlite3")
        self.shows: dict[str, _Show] = {}
        self.unloaded: set[str] = set()  # shows on disk, not in memory (see unload)
        self.creating: set[str] = set()
        self.buckets = Buckets()
        self.marks: dict[str, tuple[float, int]] = {}  # once() and count(): key -> (until, n)
        self.writer: _Writer | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

    # -- life ------------------------------------------------------------------

    async def start(self) -> None:
        lock_data_dir(self.settings.data_path())
        self.writer = _Writer(self.path, self.settings.sqlite_synchronous, asyncio.get_running_loop())
        self.epoch = self._epoch(self.writer.db)
        self._load_all(self.writer.db)
        if self.settings.show_unload_s > 0:  # ended shows stay on disk until a socket asks for one
            for slug in [slug for slug, s in self.shows.items() if s.fields.get("status") == b'"ended"']:
                del self.shows[slug]
                self.unloaded.add(slug)
        self.writer.start()

    async def close(self) -> None:
        if self.writer is not None:
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await asyncio.to_thread(self.writer.stop)
            self.writer = None

    async def ready(self) -> bool:
        return not await self.problem()

    async def problem(self) -> str:
        if self.writer is None or not self.writer.is_alive():
            return "store unavailable: the SQLite writer is not running"
        # writes failed last time: try one (it clears the mark if it works)
        if self.writer.failing:  # guard: ready writes (embedded)
            try:
                await self._write([("INSERT OR REPLACE INTO meta VALUES ('ready', ?)", (now_ms(),))])
            except StoreUnavailable as exc:
                return f"store unavailable: SQLite cannot write ({exc})"
        return ""

    async def flush(self) -> None:
        """Wait until every write queued before this call is committed (or failed)."""
        try:
            await self._write([])
        except StoreUnavailable:
            pass

    @staticmethod
    def _epoch(db: sqlite3.Connection) -> str:
        """The database's epoch: made once, with the database, and kept in its meta table."""
        db.execute("INSERT OR IGNORE INTO meta VALUES ('epoch', ?)", (uuid.uuid4().hex[:16],))
        return str(db.execute("SELECT value FROM meta WHERE name = 'epoch'").fetchone()[0])

    def _load_all(self, db: sqlite3.Connection, only: str | None = None) -> None:
        """Every show's rows into memory (or, with `only`, one show's: after an unload)."""
        where, args = (" WHERE show = ?", (only,)) if only is not None else ("", ())

        def rows(sql: str) -> Any:
            return db.execute(sql + where, args)

        for show, name, value in rows("SELECT show, name, value FROM field"):
            self.shows.setdefault(show, _Show({})).fields[name] = value
        for show, name, value in rows("SELECT show, name, value FROM counter"):
            s = self.shows.get(show)
            if s is None:
                continue
            if name in ("likes:a", "likes:b"):
                s.likes[name[-1]] = value
            elif name in ("seq", "pseq", "qid", "peak"):
                setattr(s, name, value)
        for slug, s in self.shows.items():  # a question id is never given twice
            if only is not None and slug != only:
                continue
            ids = [int(n[3:]) for n in s.fields if n.startswith("q:q") and n[3:].isdigit()]
            s.qid = max([s.qid, *ids])
        for show, rnd, device, raw in rows("SELECT show, round, device, side FROM vote"):
            s = self.shows.get(show)
            if s is not None:
                ballot = Ballot.decode(raw) if "|" in raw else Ballot(raw, COUNTED, "", "unknown")
                self._replace_ballot(s, rnd, device, ballot)
        for show, question, device in rows("SELECT show, question, device FROM upvote"):
            s = self.shows.get(show)
            if s is not None:
                s.upvoters[question].add(device)
                s.device_upvotes[device].append(question)
        for show, device, first in rows("SELECT show, device, first FROM device"):
            s = self.shows.get(show)
            if s is not None:
                s.devices[device] = first or 0

    # -- writing ---------------------------------------------------------------

    def _write(self, stmts: Statements, after: Callable[[], Any] | None = None) -> asyncio.Future[Any]:
        """Queue statements; the future resolves once they are committed, with what
        `after` (run at that moment, in commit order) returns. If the write fails,
        `after` does not run and the future fails with StoreUnavailable."""
        if self.writer is None:
            raise StoreUnavailable("store closed")
        future = asyncio.get_running_loop().create_future()

        def done(error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(StoreUnavailable(str(error)))
                return
            try:
                future.set_result(after() if after is not None else None)
            except BaseException as exc:
                future.set_exception(exc)

        self.writer.submit(stmts, done)
        return future

    def _submit(self, stmts: Statements) -> None:
        """Queue statements nobody waits for (a lost one is harmless: samples, id counters)."""
        if self.writer is not None:
            self.writer.submit(stmts, None)

    def _show(self, slug: str) -> _Show:
        show = self.shows.get(slug)
        if show is None:
            show = self._reload(slug)
            if show is None:
                raise KeyError(slug)
        return show

    def _reload(self, slug: str) -> _Show | None:
        """A show unloaded earlier, read back from SQLite (on its own read connection)."""
        if slug not in self.unloaded:
            return None
        db = sqlite3.connect(self.path)
        try:
            self._load_all(db, slug)
        finally:
            db.close()
        self.unloaded.discard(slug)
        return self.shows.get(slug)

    async def unload(self, slug: str) -> bool:
        """Forget a show's memory (its fields, ballots, upvoters, devices, replies); it is
        read back from SQLite when next needed. Only once its writes are committed."""
        if slug not in self.shows:
            return False
        await self.flush()
        s = self.shows.get(slug)
        if s is None or s.pending or s.flushing or slug in self.creating:
            return False
        del self.shows[slug]  # guard: store unload
        self.unloaded.add(slug)
        return True

    def shows_in_memory(self) -> int:
        return len(self.shows)

    # -- the contract ----------------------------------------------------------

    async def list_shows(self) -> list[str]:
        return sorted(set(self.shows) | self.unloaded)

    async def create_show(self, state: ShowState) -> None:
        slug = state.slug
        if slug in self.shows or slug in self.creating or slug in self.unloaded:
            raise Conflict(slug)
        fields = state.fields()
        self.creating.add(slug)
        try:
            await self._write(
                [(SET_FIELD, (slug, k, v)) for k, v in fields.items()] + [(SET_COUNTER, (slug, "seq", 0))]
            )
            self.shows[slug] = _Show(dict(fields))
        finally:
            self.creating.discard(slug)

    async def load(self, slug: str) -> ShowState | None:
        s = self.shows.get(slug) or self._reload(slug)
        if s is None:
            return None
        upvotes = {qid: len(devs) for qid, devs in s.upvoters.items()}
        state = ShowState.from_fields(slug, s.fields, upvotes)
        state.seq, state.pseq = s.seq, s.pseq
        state.counters = self._counters(s, state.round.index, 0)
        return state

    async def commit(
        self, slug: str, events: list[dict[str, Any]], expect: dict[str, bytes | None] | None = None
    ) -> int:
        s = self._show(slug)
        commit = _Commit(events, expect, asyncio.get_running_loop().create_future())
        s.pending.append(commit)
        if not s.flushing:
            s.flushing = True
            task = asyncio.get_running_loop().create_task(self._flush(slug, s))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        seq: int = await commit.future
        return seq

    async def _flush(self, slug: str, s: _Show) -> None:
        """Write the queued commits of a show in one transaction, then make them
        visible (memory, seq, events) in order; or fail them all, changing nothing."""
        try:
            while s.pending:
                batch, s.pending = s.pending, []
                written: dict[str, bytes] = {}  # fields written by earlier commits of the batch
                seq, pseq = s.seq, s.pseq
                stmts: Statements = []
                accepted: list[tuple[_Commit, list[tuple[int, int, dict[str, Any]]]]] = []
                now = now_ms()
                for commit in batch:
                    if not _expected(commit.expect, written, s.fields):
                        commit.future.set_exception(Conflict(slug))
                        continue
                    numbered = []
                    for event in commit.events:
                        seq += 1
                        number = 0
                        if is_public(event):
                            pseq += 1
                            number = pseq
                        numbered.append((seq, number, event))
                        for name, value in fields_of(event).items():
                            written[name] = value
                            stmts.append((SET_FIELD, (slug, name, value)))
                        stmts.append((ADD_TIMELINE, (slug, seq, now, orjson.dumps(event))))
                    accepted.append((commit, numbered))
                if not accepted:
                    continue
                stmts += [(SET_COUNTER, (slug, "seq", seq)), (SET_COUNTER, (slug, "pseq", pseq))]
                try:
                    await self._write(stmts)  # guard: durable before visible
                except StoreUnavailable as exc:
                    for commit, _ in accepted:
                        commit.future.set_exception(StoreUnavailable(str(exc)))
                    continue
                s.fields.update(written)
                s.seq, s.pseq = seq, pseq
                for commit, numbered in accepted:
                    for number, public, event in numbered:
                        self.on_event(slug, number, public, event)
                    commit.future.set_result(numbered[-1][0] if numbered else s.seq)
        finally:
            s.flushing = False

    async def signal(self, slug: str, frame: dict[str, Any]) -> None:
        self.on_signal(slug, frame)

    async def next_question_id(self, slug: str) -> str:
        s = self._show(slug)
        s.qid += 1
        self._submit([(SET_COUNTER, (slug, "qid", s.qid))])  # at load, ids in use count too
        return f"q{s.qid}"

    @staticmethod
    def _count_ballot(s: _Show, box: Box, device: str, ballot: Ballot, sign: int) -> None:
        """Count (sign 1) or uncount (-1) one ballot: the box's counts, its network's
        budget, and (a stance) the pre -> post matrix of devices that took both."""
        s.vcount[box].add(ballot, sign)
        if ballot.status != COUNTED:
            return
        nets = s.net_counted[box]
        nets[ballot.network] = nets.get(ballot.network, 0) + sign
        if box in STANCE_BOXES:
            other = s.ballots[OTHER[box]].get(device)
            if other is not None and other.status == COUNTED:
                pre, post = (ballot, other) if box == "pre" else (other, ballot)
                s.matrix[pre.side][post.side] += sign

    def _replace_ballot(self, s: _Show, box: Box, device: str, ballot: Ballot | None) -> None:
        old = s.ballots[box].pop(device, None)
        if old is not None:
            self._count_ballot(s, box, device, old, -1)
        if ballot is not None:
            s.ballots[box][device] = ballot
            self._count_ballot(s, box, device, ballot, 1)

    async def vote(self, slug: str, box: Box, device: str, side: str, voter: Voter) -> Ballot:
        s = self._show(slug)
        now = now_ms()
        previous = s.ballots[box].get(device)
        if previous is not None and previous.side == side:
            return previous
        burst = 0
        if previous is None and integrity.young(voter, now, self.vote_policy):
            key = (f"{box}:{voter.network}", side, integrity.burst_bucket(now))
            burst = s.bursts.get(key, 0) + 1
            s.bursts[key] = burst
            self._forget_old_bursts(s, now)
        reserved = s.net_reserved[box]
        counted = s.net_counted[box].get(voter.network, 0) + reserved.get(voter.network, 0)
        ballot = integrity.assess(previous, side, voter, now, self.vote_policy, counted, burst)
        reserving = previous is None and ballot.status == COUNTED  # a place in the network's budget
        if reserving:
            reserved[voter.network] = reserved.get(voter.network, 0) + 1

        def apply() -> Ballot:
            if reserving:
                reserved[voter.network] -= 1
            self._replace_ballot(s, box, device, ballot)
            return ballot

        row = ("INSERT OR REPLACE INTO vote VALUES (?, ?, ?, ?)", (slug, box, device, ballot.encode()))
        try:
            # guard: vote durability
            result: Ballot = await self._write([row], apply)
        except StoreUnavailable:
            if reserving:
                reserved[voter.network] -= 1
            raise
        return result

    @staticmethod
    def _forget_old_bursts(s: _Show, now: int) -> None:
        current = integrity.burst_bucket(now)
        if len(s.bursts) > 64:
            for key in [k for k in s.bursts if k[2] < current]:
                del s.bursts[key]

    async def unvote(self, slug: str, box: Box, device: str) -> None:
        s = self._show(slug)
        await self._write(
            [("DELETE FROM vote WHERE show = ? AND round = ? AND device = ?", (slug, box, device))],
            lambda: self._replace_ballot(s, box, device, None),
        )

    async def release_votes(self, slug: str, box: Box, reason: str) -> int:
        s = self._show(slug)
        released = {
            device: Ballot(b.side, COUNTED, "", b.network)
            for device, b in s.ballots[box].items()
            if b.status == HELD and (not reason or b.reason == reason)
        }

        def apply() -> int:
            for device, ballot in released.items():
                old = s.ballots[box].get(device)
                if old is not None and old.status == HELD:
                    self._replace_ballot(s, box, device, ballot)
            return len(released)

        rows = [
            ("INSERT OR REPLACE INTO vote VALUES (?, ?, ?, ?)", (slug, box, d, b.encode())) for d, b in released.items()
        ]
        count: int = await self._write(rows, apply)
        return count

    async def device_state(self, slug: str, round_index: int, device: str) -> DeviceState:
        s = self._show(slug)
        ballot = s.ballots[round_index].get(device)
        stances = {box: b.side for box in STANCE_BOXES if (b := s.ballots[box].get(device)) is not None}
        return DeviceState(ballot.side if ballot else None, list(s.device_upvotes.get(device, ())), stances)

    async def stance_counts(self, slug: str) -> StanceCounts:
        s = self._show(slug)
        pre, post = s.vcount["pre"].counted, s.vcount["post"].counted
        return StanceCounts(
            {k: pre.get(k, 0) for k in verdict.STANCES},
            {k: post.get(k, 0) for k in verdict.STANCES},
            {p: dict(row) for p, row in s.matrix.items()},
        )

    async def upvote(self, slug: str, qid: str, device: str) -> int | None:
        s = self._show(slug)
        if device in s.upvoters[qid]:
            return None

        def apply() -> int | None:
            voters = s.upvoters[qid]
            if device in voters:
                return None
            voters.add(device)
            s.device_upvotes[device].append(qid)
            return len(voters)

        count: int | None = await self._write(
            [("INSERT OR IGNORE INTO upvote VALUES (?, ?, ?)", (slug, qid, device))], apply
        )
        return count

    async def vote_counts(self, slug: str, box: Box) -> VoteCounts:
        counts = self._show(slug).vcount[box]
        return VoteCounts(dict(counts.counted), dict(counts.held), dict(counts.reasons))

    def _counters(self, s: _Show, round_index: int, viewers: int) -> Counters:
        counts = s.vcount[round_index] if round_index else VoteCounts.empty()
        return Counters(
            dict(s.likes),
            dict(counts.counted),
            viewers,
            s.peak,
            len(s.devices),
            held=dict(counts.held),
            held_reasons=dict(counts.reasons),
        )

    async def tick(
        self, slug: str, likes: dict[str, list[int]], round_index: int, viewers: int, overlays: int = 0
    ) -> Counters:
        s = self._show(slug)
        counted, taken = self._cap_likes(slug, likes)
        stmts: Statements = [(ADD_COUNTER, (slug, "likes:" + side, n)) for side, n in counted.items() if n]
        if viewers > s.peak:
            stmts.append((MAX_COUNTER, (slug, "peak", viewers)))

        def apply() -> None:
            for side, n in counted.items():
                s.likes[side] += n
            s.peak = max(s.peak, viewers)

        if stmts:
            try:
                await self._write(stmts, apply)
            except StoreUnavailable:
                for bucket, n in taken:  # not counted: the devices get their taps back
                    bucket.tokens += n
                raise
        counters = self._counters(s, round_index, viewers)
        counters.overlays = overlays
        return counters

    def _cap_likes(
        self, slug: str, likes: dict[str, list[int]]
    ) -> tuple[dict[str, int], list[tuple[TokenBucket, int]]]:
        """The taps that count (each device within its cap), and what each bucket paid."""
        rate, burst = self.settings.like_rate, self.settings.like_burst
        now = time.monotonic()
        counted = {"a": 0, "b": 0}
        taken = []
        for device, taps in likes.items():
            bucket = self.buckets.bucket(f"{slug}:{device}", "likes", rate, burst, now)
            n = bucket.take_up_to(now, taps[0] + taps[1])  # guard: like cap
            allowed = split(taps, n)
            counted["a"] += allowed[0]
            counted["b"] += allowed[1]
            taken.append((bucket, n))
        return counted, taken

    async def take(self, slug: str, holder: str, kind: str, rate: float, burst: float) -> float:
        return self.buckets.take(f"{slug}:{holder}", kind, rate, burst, time.monotonic())

    def replies(self, slug: str) -> Replies:
        s = self._show(slug)
        if s.replies is None:
            s.replies = MemoryReplies(self.settings.reply_cache_bytes, self.settings.reply_ttl_s)
        return s.replies

    async def once(self, key: str, ttl_s: int) -> bool:
        now = time.monotonic()
        self._expire_marks(now)
        key = "once:" + key
        if key in self.marks and self.marks[key][0] > now:
            return False
        self.marks[key] = (now + ttl_s, 1)
        return True

    async def count(self, key: str, window_s: int) -> int:
        now = time.monotonic()
        self._expire_marks(now)
        key = "n:" + key
        until, n = self.marks.get(key, (now + window_s, 0))
        if until <= now:
            until, n = now + window_s, 0
        self.marks[key] = (until, n + 1)
        return n + 1

    def _expire_marks(self, now: float) -> None:
        """Forget marks and counters past their time, now and then (amortised)."""
        if len(self.marks) > 4096:
            for key in [k for k, (until, _) in self.marks.items() if until <= now]:
                del self.marks[key]

    async def reset_counters(self, slug: str) -> None:
        s = self._show(slug)

        def apply() -> None:
            s.likes = {"a": 0, "b": 0}
            s.ballots.clear()
            s.vcount.clear()
            s.net_counted.clear()
            s.matrix = verdict.empty_matrix()
            s.peak = 0
            s.devices.clear()

        await self._write(
            [
                ("DELETE FROM vote WHERE show = ?", (slug,)),
                ("DELETE FROM device WHERE show = ?", (slug,)),
                *[(SET_COUNTER, (slug, name, 0)) for name in ("likes:a", "likes:b", "peak")],
            ],
            apply,
        )

    async def see_device(self, slug: str, device: str) -> int:
        s = self._show(slug)
        first = s.devices.get(device)
        if first is not None:
            return first
        now = now_ms()

        def apply() -> int:
            return s.devices.setdefault(device, now)

        seen: int = await self._write([("INSERT OR IGNORE INTO device VALUES (?, ?, ?)", (slug, device, now))], apply)
        return seen

    async def sample(self, slug: str, seq: int, data: dict[str, Any]) -> None:
        self._submit([(ADD_TIMELINE, (slug, seq, now_ms(), orjson.dumps({"type": "sample", **data})))])

    async def timeline(self, slug: str) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            db = sqlite3.connect(self.path)
            try:
                rows = db.execute("SELECT seq, ts, data FROM timeline WHERE show = ? ORDER BY n", (slug,))
                return [{"seq": seq, "ts": ts, **orjson.loads(data)} for seq, ts, data in rows]
            finally:
                db.close()

        return await asyncio.to_thread(read)


def _expected(expect: dict[str, bytes | None] | None, written: dict[str, bytes], fields: dict[str, bytes]) -> bool:
    """Does every expected field still hold its value (counting earlier writes of the batch)?"""
    for name, value in (expect or {}).items():
        current = written.get(name, fields.get(name))
        if current != value and not (current is None and isinstance(value, OrAbsent)):
            return False
    return True
