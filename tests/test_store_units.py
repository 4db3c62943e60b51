"""The embedded store writes durably before anything becomes visible: a write
that fails leaves memory, `seq` and the event stream as they were (a fake
SQLite connection that refuses writes), and once for real, on a full disk."""

import asyncio
import os
import sqlite3
import subprocess
import tempfile

import httpx
import pytest
from conftest import Clients, create_show, wait_until

from server.domain.integrity import Voter
from server.domain.questions import Question
from server.domain.show import new_show
from server.settings import Settings
from server.store import StoreUnavailable
from server.store.embedded import EmbeddedStore

VOTER = Voter("10.0.0.0/24", False, 0)


class RefusingDb:
    """A SQLite connection whose writes fail (as on a full or broken disk)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.refuse = True

    def execute(self, sql: str, params: tuple = ()) -> object:
        if self.refuse and sql.split()[0] in ("INSERT", "DELETE", "UPDATE"):
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, params)

    def close(self) -> None:
        self.db.close()


@pytest.fixture
async def store():
    st = EmbeddedStore(Settings.from_env(data_dir=tempfile.mkdtemp(prefix="leitai-unit-")))
    events: list[tuple] = []
    st.on_event = lambda slug, seq, pseq, event: events.append((slug, seq, pseq, event))
    await st.start()
    await st.create_show(new_show("s1", "节目", {"a": {}, "b": {}}, now=1))
    st.events = events  # type: ignore[attr-defined]
    yield st
    await st.close()


def question(qid: str) -> dict:
    return {"type": "question", "question": Question(qid, "问题", "", "approved", 1, "dev1").record()}


async def test_a_failed_write_changes_nothing_anyone_can_see(store):
    await store.commit("s1", [question("q1")])
    await store.vote("s1", 1, "dev1", "a", VOTER)
    before = await store.load("s1")
    seen = len(store.events)
    refusing = store.writer.db = RefusingDb(store.writer.db)

    with pytest.raises(StoreUnavailable):
        await store.commit("s1", [question("q2"), question("q3")])
    with pytest.raises(StoreUnavailable):
        await store.vote("s1", 1, "dev1", "b", VOTER)
    with pytest.raises(StoreUnavailable):
        await store.upvote("s1", "q1", "dev2")
    with pytest.raises(StoreUnavailable):
        await store.tick("s1", {"dev1": [5, 0]}, 1, 7)
    with pytest.raises(StoreUnavailable):
        await store.create_show(new_show("s2", "节目二", {"a": {}, "b": {}}))

    after = await store.load("s1")
    assert (after.seq, after.pseq) == (before.seq, before.pseq)
    assert set(after.questions) == {"q1"} and after.questions["q1"].upvotes == 0
    assert (await store.vote_counts("s1", 1)).counted == {"a": 1, "b": 0}
    assert (await store.device_state("s1", 1, "dev1"))[:2] == ("a", [])
    assert after.counters.likes == {"a": 0, "b": 0} and after.counters.peak_viewers == 0
    assert len(store.events) == seen, "no event was published"
    assert await store.list_shows() == ["s1"]

    refusing.refuse = False  # the disk has room again: numbering goes on without a gap
    seq = await store.commit("s1", [question("q2")])
    assert seq == before.seq + 1 and store.events[-1][1] == seq


async def test_commits_queued_together_are_numbered_in_order_and_checked_in_order(store):
    from server.domain.show import field_value
    from server.store import Conflict

    state = await store.load("s1")
    expect = {"title": field_value(state, "title")}
    first = store.commit("s1", [{"type": "show", "show": {"title": "一"}}], expect)
    second = store.commit("s1", [{"type": "show", "show": {"title": "二"}}], expect)  # read the same title
    third = store.commit("s1", [question("q9")])
    results = await asyncio.gather(first, second, third, return_exceptions=True)
    assert results[0] == 1 and isinstance(results[1], Conflict) and results[2] == 2
    assert [e[1] for e in store.events] == [1, 2]
    assert (await store.load("s1")).title == "一"


@pytest.fixture
def full_disk():
    """A data directory on a 4 MiB tmpfs, and a way to fill it and free it."""
    path = tempfile.mkdtemp(prefix="leitai-fulldisk-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", path], capture_output=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    filler = os.path.join(path, "filler")

    def fill() -> None:
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass

    def free() -> None:
        os.remove(filler)

    try:
        yield path, fill, free
    finally:
        subprocess.run(["umount", "-l", path])


async def test_a_full_disk_answers_unavailable_and_shows_nothing(fresh_server, full_disk):
    data_dir, fill, free = full_disk
    srv = fresh_server(data_dir=data_dir, QUESTION_INTERVAL_S="0.001")
    slug = create_show(srv.url)
    made = Clients(srv)
    try:
        console = await made.console(slug)
        phone = await made.audience(slug)
        first = await phone.request({"type": "ask", "text": "第一个问题"})
        assert first["type"] == "ack"
        await console.wait_for(lambda f: f["type"] == "question" and f["question"]["id"] == first["question"])
        seq_before = max(f.get("seq", 0) for f in console.frames)
        fill()
        reply = await phone.request({"type": "ask", "text": "磁盘满了还能提问吗？"})
        assert reply["type"] == "error" and reply["code"] == "unavailable"
        vote = await console.request({"type": "round.start", "topic": "第一轮", "duration_s": 60})
        assert vote["type"] == "error" and vote["code"] == "unavailable"
        assert not [f for f in console.frames if f.get("seq", 0) > seq_before and f["type"] != "tally"]
        ready = httpx.get(f"{srv.url}/readyz")
        assert ready.status_code == 503 and "SQLite cannot write" in ready.text, ready.text
        free()
        await wait_until(lambda: httpx.get(f"{srv.url}/readyz").status_code == 200)  # its probe write works
        again = await phone.request({"type": "ask", "text": "现在呢？"})
        assert again["type"] == "ack"
        frame = await console.wait_for(lambda f: f["type"] == "question" and f["question"]["text"] == "现在呢？")
        assert frame["seq"] == seq_before + 1, "the failed writes took no number"
    finally:
        await made.close()
