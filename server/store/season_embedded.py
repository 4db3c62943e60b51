"""The season store in one process: memory, made durable in its own SQLite file
(`DATA_DIR/season.sqlite3`) by one writer thread that group-commits.

Durable before visible, as in the show store: memory changes only after the
transaction that records the change has committed, and a failed write changes
nothing anyone can see (the caller gets StoreUnavailable).
"""

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..domain import integrity
from ..domain.integrity import COUNTED, HELD, Ballot, VoteCounts, Voter
from ..settings import Settings
from . import Conflict, StoreUnavailable
from .season import KINDS, SeasonStore

log = logging.getLogger("leitai.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS record (kind TEXT, id TEXT, version INTEGER, data BLOB, PRIMARY KEY (kind, id))
  WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value INTEGER) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blob (key TEXT PRIMARY KEY, data BLOB) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ballot (poll TEXT, device TEXT, ballot TEXT, PRIMARY KEY (poll, device)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen (poll TEXT, device TEXT, first INTEGER, PRIMARY KEY (poll, device)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS signup (talk TEXT, key TEXT, n INTEGER, data BLOB, PRIMARY KEY (talk, key)) WITHOUT ROWID;
"""

Statements = list[tuple[str, tuple[Any, ...]]]
Done = Callable[[BaseException | None], None]


def now_ms() -> int:
    return int(time.time() * 1000)


class Writer(threading.Thread):
    """The one thread that writes the season's SQLite file; group-commits whatever is
    queued, and tells each waiter how its transaction went."""

    def __init__(self, path: str, synchronous: str, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(name="leitai-season-sqlite", daemon=True)
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.loop = loop
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        self.db.executescript(SCHEMA)

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
            stop = batch[-1] is None
            jobs = [job for job in batch if job is not None]
            error: BaseException | None = None
            try:
                self.db.execute("BEGIN")
                for stmts, _ in jobs:
                    for sql, params in stmts:
                        self.db.execute(sql, params)
                self.db.execute("COMMIT")
            except Exception as exc:  # disk full, I/O error: every waiter hears of it
                log.error("season sqlite write failed: %s", exc)
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


def _finish(dones: list[Done], error: BaseException | None) -> None:
    for done in dones:
        done(error)


@dataclass
class _Poll:
    ballots: dict[str, Ballot] = field(default_factory=dict)
    counts: VoteCounts = field(default_factory=lambda: VoteCounts({}, {}, {}))
    net_counted: dict[str, int] = field(default_factory=dict)
    net_reserved: dict[str, int] = field(default_factory=dict)  # counted ballots being written
    bursts: dict[tuple[str, str, int], int] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)

    def count(self, ballot: Ballot, sign: int) -> None:
        self.counts.add(ballot, sign)
        if ballot.status == COUNTED:
            self.net_counted[ballot.network] = self.net_counted.get(ballot.network, 0) + sign


class EmbeddedSeasonStore(SeasonStore):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.path = str(settings.data_path() / "season.sqlite3")
        self.records: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.reserved: dict[tuple[str, str], int] = {}  # versions being written
        self.counters: dict[str, int] = {}
        self.blobs: dict[str, bytes] = {}
        self.polls: dict[str, _Poll] = {}
        self.signup_rows: dict[str, dict[str, tuple[int, dict[str, Any]]]] = {}
        self.writer: Writer | None = None

    # -- life ----------------------------------------------------------------------

    async def start(self) -> None:
        self.writer = Writer(self.path, self.settings.sqlite_synchronous, asyncio.get_running_loop())
        self._load(self.writer.db)
        self.writer.start()

    async def close(self) -> None:
        if self.writer is not None:
            await asyncio.to_thread(self.writer.stop)
            self.writer = None

    async def flush(self) -> None:
        try:
            await self._write([])
        except StoreUnavailable:
            pass

    def _load(self, db: sqlite3.Connection) -> None:
        for kind, rid, version, data in db.execute("SELECT kind, id, version, data FROM record"):
            self.records.setdefault(kind, {})[rid] = {**orjson.loads(data), "version": version}
        self.counters = dict(db.execute("SELECT name, value FROM counter"))
        self.blobs = dict(db.execute("SELECT key, data FROM blob"))
        for poll, device, raw in db.execute("SELECT poll, device, ballot FROM ballot"):
            p = self.polls.setdefault(poll, _Poll())
            ballot = Ballot.decode(raw)
            p.ballots[device] = ballot
            p.count(ballot, 1)
        for poll, device, first in db.execute("SELECT poll, device, first FROM seen"):
            self.polls.setdefault(poll, _Poll()).seen[device] = first
        for talk, key, n, data in db.execute("SELECT talk, key, n, data FROM signup"):
            self.signup_rows.setdefault(talk, {})[key] = (n, orjson.loads(data))

    def _write(self, stmts: Statements, after: Callable[[], Any] | None = None) -> asyncio.Future[Any]:
        """Queue statements; the future resolves once they are committed, with what
        `after` returns (run then, in commit order). A failed write runs nothing and
        fails the future with StoreUnavailable."""
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

    # -- records -------------------------------------------------------------------

    async def next_id(self, kind: str) -> int:
        used = [int(rid[1:]) for rid in self.records.get(kind, {}) if rid[1:].isdigit()]
        n = max([self.counters.get(kind, 0), *used]) + 1
        self.counters[kind] = n
        if self.writer is not None:  # a lost count is harmless: ids in use count at load
            self.writer.submit([("INSERT OR REPLACE INTO counter VALUES (?, ?)", (kind, n))], None)
        return n

    async def get(self, kind: str, rid: str) -> dict[str, Any] | None:
        rec = self.records.get(kind, {}).get(rid)
        return dict(rec) if rec is not None else None

    async def all(self, kind: str) -> list[dict[str, Any]]:
        return [dict(rec) for rec in self.records.get(kind, {}).values()]

    async def put(self, kind: str, rid: str, record: dict[str, Any], expect: int) -> int:
        table = self.records.setdefault(kind, {})
        key = (kind, rid)
        current = self.reserved.get(key, table[rid]["version"] if rid in table else 0)
        if current != expect:  # guard: record compare-and-set
            raise Conflict(f"{kind} {rid}")
        version = expect + 1
        self.reserved[key] = version
        body = {k: v for k, v in record.items() if k != "version"}
        row = ("INSERT OR REPLACE INTO record VALUES (?, ?, ?, ?)", (kind, rid, version, orjson.dumps(body)))

        def apply() -> int:
            table[rid] = {**body, "version": version}
            return version

        try:
            result: int = await self._write([row], apply)
        finally:
            if self.reserved.get(key) == version:
                del self.reserved[key]
        return result

    # -- blobs ---------------------------------------------------------------------

    async def put_blob(self, key: str, data: bytes) -> None:
        def apply() -> None:
            self.blobs[key] = data

        await self._write([("INSERT OR REPLACE INTO blob VALUES (?, ?)", (key, data))], apply)

    async def blob(self, key: str) -> bytes | None:
        return self.blobs.get(key)

    # -- poll ballots ----------------------------------------------------------------

    async def poll_see(self, poll: str, device: str) -> int:
        p = self.polls.setdefault(poll, _Poll())
        first = p.seen.get(device)
        if first is not None:
            return first
        now = now_ms()

        def apply() -> int:
            return p.seen.setdefault(device, now)

        seen: int = await self._write([("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", (poll, device, now))], apply)
        return seen

    async def poll_vote(self, poll: str, device: str, choice: str, voter: Voter) -> Ballot:
        p = self.polls.setdefault(poll, _Poll())
        now = now_ms()
        previous = p.ballots.get(device)
        if previous is not None and previous.side == choice:
            return previous
        burst = 0
        if previous is None and integrity.young(voter, now, self.vote_policy):
            key = (voter.network, choice, integrity.burst_bucket(now))
            burst = p.bursts[key] = p.bursts.get(key, 0) + 1
            if len(p.bursts) > 64:
                current = integrity.burst_bucket(now)
                p.bursts = {k: v for k, v in p.bursts.items() if k[2] >= current}
        counted = p.net_counted.get(voter.network, 0) + p.net_reserved.get(voter.network, 0)
        ballot = integrity.assess(previous, choice, voter, now, self.vote_policy, counted, burst)
        reserving = previous is None and ballot.status == COUNTED
        if reserving:
            p.net_reserved[voter.network] = p.net_reserved.get(voter.network, 0) + 1

        def apply() -> Ballot:
            if reserving:
                p.net_reserved[voter.network] -= 1
            old = p.ballots.get(device)
            if old is not None:
                p.count(old, -1)
            p.ballots[device] = ballot
            p.count(ballot, 1)
            return ballot

        row = ("INSERT OR REPLACE INTO ballot VALUES (?, ?, ?)", (poll, device, ballot.encode()))
        try:
            # guard: ballot durability
            result: Ballot = await self._write([row], apply)
        except StoreUnavailable:
            if reserving:
                p.net_reserved[voter.network] -= 1
            raise
        return result

    async def poll_ballot(self, poll: str, device: str) -> Ballot | None:
        p = self.polls.get(poll)
        return p.ballots.get(device) if p else None

    async def poll_counts(self, poll: str) -> VoteCounts:
        p = self.polls.get(poll)
        if p is None:
            return VoteCounts({}, {}, {})
        return VoteCounts(dict(p.counts.counted), dict(p.counts.held), dict(p.counts.reasons))

    async def poll_release(self, poll: str, reason: str) -> int:
        p = self.polls.setdefault(poll, _Poll())
        released = {
            device: Ballot(b.side, COUNTED, "", b.network)
            for device, b in p.ballots.items()
            if b.status == HELD and (not reason or b.reason == reason)
        }

        def apply() -> int:
            for device in released:
                old = p.ballots.get(device)
                if old is not None and old.status == HELD:
                    p.count(old, -1)
                    p.ballots[device] = Ballot(old.side, COUNTED, "", old.network)
                    p.count(p.ballots[device], 1)
            return len(released)

        rows = [("INSERT OR REPLACE INTO ballot VALUES (?, ?, ?)", (poll, d, b.encode())) for d, b in released.items()]
        n: int = await self._write(rows, apply)
        return n

    # -- sign-ups ----------------------------------------------------------------------

    async def signup(self, talk: str, key: str, record: dict[str, Any]) -> bool:
        rows = self.signup_rows.setdefault(talk, {})
        if key in rows:
            return False
        n = max((row[0] for row in rows.values()), default=0) + 1
        rows[key] = (n, {})  # the place is taken now; the record lands once written
        body = {k: v for k, v in record.items() if k != "key"}

        def apply() -> bool:
            rows[key] = (n, body)
            return True

        try:
            ok: bool = await self._write(
                [("INSERT INTO signup VALUES (?, ?, ?, ?)", (talk, key, n, orjson.dumps(body)))], apply
            )
        except StoreUnavailable:
            rows.pop(key, None)
            raise
        return ok

    async def signups(self, talk: str) -> list[dict[str, Any]]:
        rows = sorted(self.signup_rows.get(talk, {}).items(), key=lambda kv: kv[1][0])
        return [{**body, "key": key} for key, (_, body) in rows if body]

    async def put_signup(self, talk: str, key: str, record: dict[str, Any]) -> None:
        rows = self.signup_rows.get(talk, {})
        if key not in rows:
            raise KeyError(key)
        n = rows[key][0]
        body = {k: v for k, v in record.items() if k != "key"}

        def apply() -> None:
            rows[key] = (n, body)

        await self._write(
            [("UPDATE signup SET data = ? WHERE talk = ? AND key = ?", (orjson.dumps(body), talk, key))], apply
        )
