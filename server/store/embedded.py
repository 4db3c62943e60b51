"""Embedded store: state in memory, made durable in SQLite (WAL) by one writer thread.

Writes are group-committed: whatever arrives while one transaction commits goes
into the next one, so a burst of votes costs a handful of commits, not one each.
An acknowledged write has been committed before its ack (the caller awaits it);
likes are written on every tick.
"""

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import orjson

from ..domain import votes as vmod
from ..domain.show import Counters, OrAbsent, ShowState, fields_of, is_public
from . import Conflict, Store, StoreUnavailable

log = logging.getLogger("leitai.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS field (show TEXT, name TEXT, value BLOB, PRIMARY KEY (show, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counter (show TEXT, name TEXT, value INTEGER, PRIMARY KEY (show, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vote (show TEXT, round INTEGER, device TEXT, side TEXT, PRIMARY KEY (show, round, device)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS upvote (show TEXT, question TEXT, device TEXT, PRIMARY KEY (show, question, device)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device (show TEXT, device TEXT, PRIMARY KEY (show, device)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS timeline (n INTEGER PRIMARY KEY AUTOINCREMENT, show TEXT, seq INTEGER, ts INTEGER, data BLOB);
CREATE INDEX IF NOT EXISTS timeline_show ON timeline (show, n);
"""

SET_FIELD = "INSERT OR REPLACE INTO field VALUES (?, ?, ?)"
SET_COUNTER = "INSERT OR REPLACE INTO counter VALUES (?, ?, ?)"
ADD_TIMELINE = "INSERT INTO timeline (show, seq, ts, data) VALUES (?, ?, ?, ?)"

Statements = list[tuple[str, tuple]]


@dataclass
class _Show:
    fields: dict[str, bytes]
    seq: int = 0
    pseq: int = 0
    qid: int = 0
    peak: int = 0
    likes: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    saved_likes: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    votes: dict[int, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    vcount: dict[int, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: {"a": 0, "b": 0}))
    upvoters: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    device_upvotes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    devices: set[str] = field(default_factory=set)


class _Writer(threading.Thread):
    """The one thread that writes SQLite; group-commits whatever is queued."""

    def __init__(self, path: str, synchronous: str, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(name="leitai-sqlite", daemon=True)
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.loop = loop
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        self.db.executescript(SCHEMA)

    def submit(self, stmts: Statements, done: Callable[[BaseException | None], None] | None) -> None:
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
            except Exception as exc:  # disk full, I/O error: tell every waiter
                log.exception("sqlite write failed")
                error = exc
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


def _finish(dones: list, error: BaseException | None) -> None:
    for done in dones:
        done(error)


class EmbeddedStore(Store):
    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.path = str(settings.data_path() / "leitai.sqlite3")
        self.shows: dict[str, _Show] = {}
        self.writer: _Writer | None = None

    # -- life ------------------------------------------------------------------

    async def start(self) -> None:
        self.writer = _Writer(self.path, self.settings.sqlite_synchronous, asyncio.get_running_loop())
        self._load_all(self.writer.db)
        self.writer.start()

    async def close(self) -> None:
        if self.writer is not None:
            self._save_likes()
            await asyncio.to_thread(self.writer.stop)
            self.writer = None

    async def ready(self) -> bool:
        return self.writer is not None and self.writer.is_alive()

    def _load_all(self, db: sqlite3.Connection) -> None:
        for show, name, value in db.execute("SELECT show, name, value FROM field"):
            self.shows.setdefault(show, _Show({})).fields[name] = value
        for show, name, value in db.execute("SELECT show, name, value FROM counter"):
            s = self.shows.get(show)
            if s is None:
                continue
            if name in ("likes:a", "likes:b"):
                s.likes[name[-1]] = s.saved_likes[name[-1]] = value
            elif name in ("seq", "pseq", "qid", "peak"):
                setattr(s, name, value)
        for show, rnd, device, side in db.execute("SELECT show, round, device, side FROM vote"):
            s = self.shows.get(show)
            if s is not None:
                s.votes[rnd][device] = side
                s.vcount[rnd][side] += 1
        for show, question, device in db.execute("SELECT show, question, device FROM upvote"):
            s = self.shows.get(show)
            if s is not None:
                s.upvoters[question].add(device)
                s.device_upvotes[device].append(question)
        for show, device in db.execute("SELECT show, device FROM device"):
            s = self.shows.get(show)
            if s is not None:
                s.devices.add(device)

    # -- writing ---------------------------------------------------------------

    def _write(self, stmts: Statements, after: Callable[[], None] | None = None) -> asyncio.Future:
        """Queue statements; the future resolves once they are committed (after `after` ran)."""
        if self.writer is None:
            raise StoreUnavailable("store closed")
        future = asyncio.get_running_loop().create_future()

        def done(error: BaseException | None) -> None:
            if error is None and after is not None:
                after()
            if not future.done():
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(StoreUnavailable(str(error)))

        self.writer.submit(stmts, done)
        return future

    def _show(self, slug: str) -> _Show:
        show = self.shows.get(slug)
        if show is None:
            raise KeyError(slug)
        return show

    # -- the contract ----------------------------------------------------------

    async def list_shows(self) -> list[str]:
        return sorted(self.shows)

    async def create_show(self, state: ShowState) -> None:
        if state.slug in self.shows:
            raise Conflict(state.slug)
        fields = state.fields()
        self.shows[state.slug] = _Show(dict(fields))
        await self._write([(SET_FIELD, (state.slug, k, v)) for k, v in fields.items()]
                          + [(SET_COUNTER, (state.slug, "seq", 0))])

    async def load(self, slug: str) -> ShowState | None:
        s = self.shows.get(slug)
        if s is None:
            return None
        upvotes = {qid: len(devs) for qid, devs in s.upvoters.items()}
        state = ShowState.from_fields(slug, s.fields, upvotes)
        state.seq, state.pseq = s.seq, s.pseq
        state.counters = self._counters(s, state.round.index, 0)
        return state

    async def commit(self, slug: str, events: list[dict],
                     expect: dict[str, bytes | None] | None = None) -> int:
        s = self._show(slug)
        for name, value in (expect or {}).items():
            current = s.fields.get(name)
            if current != value and not (current is None and isinstance(value, OrAbsent)):
                raise Conflict(name)
        now = int(time.time() * 1000)
        stmts: Statements = []
        numbered = []
        for event in events:
            s.seq += 1
            pseq = 0
            if is_public(event):
                s.pseq += 1
                pseq = s.pseq
            numbered.append((s.seq, pseq, event))
            for name, value in fields_of(event).items():
                s.fields[name] = value
                stmts.append((SET_FIELD, (slug, name, value)))
            stmts.append((ADD_TIMELINE, (slug, s.seq, now, orjson.dumps(event))))
        stmts.append((SET_COUNTER, (slug, "seq", s.seq)))
        stmts.append((SET_COUNTER, (slug, "pseq", s.pseq)))

        def publish() -> None:
            for seq, pseq, event in numbered:
                self.on_event(slug, seq, pseq, event)

        await self._write(stmts, publish)
        return s.seq

    async def signal(self, slug: str, frame: dict) -> None:
        self.on_signal(slug, frame)

    async def next_question_id(self, slug: str) -> str:
        s = self._show(slug)
        s.qid += 1
        self.writer.submit([(SET_COUNTER, (slug, "qid", s.qid))], None)
        return f"q{s.qid}"

    async def vote(self, slug: str, round_index: int, device: str, side: str) -> None:
        s = self._show(slug)
        previous = s.votes[round_index].get(device)
        if previous == side:
            return
        s.votes[round_index][device] = side
        s.vcount[round_index] = vmod.change(s.vcount[round_index], previous, side)
        await self._write([("INSERT OR REPLACE INTO vote VALUES (?, ?, ?, ?)",
                            (slug, round_index, device, side))])

    async def unvote(self, slug: str, round_index: int, device: str) -> None:
        s = self._show(slug)
        previous = s.votes[round_index].pop(device, None)
        if previous is None:
            return
        s.vcount[round_index][previous] -= 1
        await self._write([("DELETE FROM vote WHERE show = ? AND round = ? AND device = ?",
                            (slug, round_index, device))])

    async def device_state(self, slug: str, round_index: int, device: str) -> tuple[str | None, list[str]]:
        s = self._show(slug)
        return s.votes[round_index].get(device), list(s.device_upvotes.get(device, ()))

    async def upvote(self, slug: str, qid: str, device: str) -> int | None:
        s = self._show(slug)
        voters = s.upvoters[qid]
        if device in voters:
            return None
        voters.add(device)
        s.device_upvotes[device].append(qid)
        await self._write([("INSERT OR IGNORE INTO upvote VALUES (?, ?, ?)", (slug, qid, device))])
        return len(voters)

    async def vote_counts(self, slug: str, round_index: int) -> dict[str, int]:
        return dict(self._show(slug).vcount[round_index])

    def _counters(self, s: _Show, round_index: int, viewers: int) -> Counters:
        return Counters(dict(s.likes), dict(s.vcount[round_index]) if round_index else {"a": 0, "b": 0},
                        viewers, s.peak, len(s.devices))

    async def tick(self, slug: str, likes: dict[str, int], round_index: int, viewers: int,
                   overlays: int = 0) -> Counters:
        s = self._show(slug)
        for side, n in likes.items():
            s.likes[side] += n
        stmts: Statements = []
        if viewers > s.peak:
            s.peak = viewers
            stmts.append((SET_COUNTER, (slug, "peak", viewers)))
        stmts += self._like_statements(slug, s)
        if stmts:
            self.writer.submit(stmts, None)
        counters = self._counters(s, round_index, viewers)
        counters.overlays = overlays
        return counters

    @staticmethod
    def _like_statements(slug: str, s: _Show) -> Statements:
        """The likes to write, if they changed since the last write."""
        if s.likes == s.saved_likes:
            return []
        s.saved_likes = dict(s.likes)
        return [(SET_COUNTER, (slug, "likes:" + side, n)) for side, n in s.likes.items()]

    def _save_likes(self) -> None:
        for slug, s in self.shows.items():
            stmts = self._like_statements(slug, s)
            if stmts:
                self.writer.submit(stmts, None)

    async def reset_counters(self, slug: str) -> None:
        s = self._show(slug)
        s.likes = {"a": 0, "b": 0}
        s.saved_likes = {"a": 0, "b": 0}
        s.votes.clear()
        s.vcount.clear()
        s.peak = 0
        s.devices.clear()
        await self._write([
            ("DELETE FROM vote WHERE show = ?", (slug,)),
            ("DELETE FROM device WHERE show = ?", (slug,)),
            *[(SET_COUNTER, (slug, name, 0)) for name in ("likes:a", "likes:b", "peak")]])

    async def see_device(self, slug: str, device: str) -> None:
        s = self._show(slug)
        if device not in s.devices:
            s.devices.add(device)
            self.writer.submit([("INSERT OR IGNORE INTO device VALUES (?, ?)", (slug, device))], None)

    async def sample(self, slug: str, seq: int, data: dict) -> None:
        now = int(time.time() * 1000)
        self.writer.submit([(ADD_TIMELINE, (slug, seq, now, orjson.dumps({"type": "sample", **data})))], None)

    async def timeline(self, slug: str) -> list[dict]:
        def read() -> list[dict]:
            db = sqlite3.connect(self.path)
            try:
                rows = db.execute("SELECT seq, ts, data FROM timeline WHERE show = ? ORDER BY n", (slug,))
                return [{"seq": seq, "ts": ts, **orjson.loads(data)} for seq, ts, data in rows]
            finally:
                db.close()

        return await asyncio.to_thread(read)
