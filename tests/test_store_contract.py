"""One contract, two stores: the same tests against the embedded and the Redis store."""

import asyncio
import itertools
import os
import tempfile

import pytest

from server.domain.questions import Question
from server.domain.show import new_show
from server.settings import Settings
from server.store import Conflict, Store, make_store

SIDES = {"a": {"name": "红方"}, "b": {"name": "蓝方"}}
_n = itertools.count()


@pytest.fixture(params=["embedded", "redis"])
async def store(request):
    if request.param == "redis":
        srv = request.getfixturevalue("redis_server")
        settings = Settings.from_env(redis_url=srv.url, data_dir=tempfile.mkdtemp(),
                                     redis_prefix=f"contract{next(_n)}")
    else:
        settings = Settings.from_env(redis_url="", data_dir=tempfile.mkdtemp())
    st = make_store(settings)
    events: list[tuple[str, int, dict]] = []
    pseqs: list[int] = []
    got = asyncio.Event()

    def on_event(slug, seq, pseq, event):
        events.append((slug, seq, event))
        pseqs.append(pseq)
        got.set()

    st.on_event = on_event
    st.events, st.got, st.pseqs = events, got, pseqs
    await st.start()
    yield st
    await st.close()


async def wait_events(store, n: int) -> list:
    while len(store.events) < n:
        store.got.clear()
        await asyncio.wait_for(store.got.wait(), 5)
    return store.events


def q(qid: str, status: str = "pending") -> dict:
    return {"type": "question", "question": Question(qid, "问题", "", status, 1, "dev").record()}


async def test_create_list_load(store: Store):
    assert await store.load("s1") is None
    await store.create_show(new_show("s1", "第一期", SIDES, now=5))
    with pytest.raises(Conflict):
        await store.create_show(new_show("s1", "again", SIDES))
    assert "s1" in await store.list_shows()
    state = await store.load("s1")
    assert state.title == "第一期" and state.seq == 0 and state.counters.likes == {"a": 0, "b": 0}


async def test_commit_numbers_and_publishes_in_order(store: Store):
    await store.create_show(new_show("s2", "T", SIDES))
    assert await store.commit("s2", [q("q1")]) == 1
    assert await store.commit("s2", [q("q2"), {"type": "points", "points": {"a": 1, "b": 0}}]) == 3
    events = await wait_events(store, 3)
    assert [(s, n) for s, n, _ in events] == [("s2", 1), ("s2", 2), ("s2", 3)]
    state = await store.load("s2")
    assert state.seq == 3 and set(state.questions) == {"q1", "q2"} and state.points["a"] == 1


async def test_compare_and_set(store: Store):
    await store.create_show(new_show("s3", "T", SIDES))
    state = await store.load("s3")
    from server.domain.show import field_value
    expect = {"points": field_value(state, "points"), "q:q1": None}
    await store.commit("s3", [{"type": "points", "points": {"a": 2, "b": 0}}], expect)
    with pytest.raises(Conflict):  # points moved since `expect` was read
        await store.commit("s3", [{"type": "points", "points": {"a": 9, "b": 0}}], expect)
    assert (await store.load("s3")).points == {"a": 2, "b": 0}
    assert (await store.load("s3")).seq == 1


async def test_votes_last_write_wins(store: Store):
    await store.create_show(new_show("s4", "T", SIDES))
    await store.vote("s4", 1, "d1", "a")
    await store.vote("s4", 1, "d1", "a")
    await store.vote("s4", 1, "d2", "a")
    await store.vote("s4", 1, "d1", "b")
    await store.vote("s4", 2, "d1", "a")
    assert await store.vote_counts("s4", 1) == {"a": 1, "b": 1}
    assert await store.vote_counts("s4", 2) == {"a": 1, "b": 0}
    assert (await store.device_state("s4", 1, "d1"))[0] == "b"


async def test_upvotes_once_per_device(store: Store):
    await store.create_show(new_show("s5", "T", SIDES))
    assert await store.upvote("s5", "q1", "d1") == 1
    assert await store.upvote("s5", "q1", "d1") is None
    assert await store.upvote("s5", "q1", "d2") == 2
    assert (await store.device_state("s5", 0, "d1"))[1] == ["q1"]


async def test_tick_adds_likes_and_reports_viewers(store: Store):
    await store.create_show(new_show("s6", "T", SIDES))
    await store.see_device("s6", "d1")
    await store.see_device("s6", "d1")
    await store.see_device("s6", "d2")
    c = await store.tick("s6", {"a": 5, "b": 0}, 0, 3)
    c = await store.tick("s6", {"a": 1, "b": 2}, 0, 2)
    assert c.likes == {"a": 6, "b": 2} and c.viewers == 2 and c.peak_viewers == 3 and c.unique_viewers == 2
    assert (await store.load("s6")).counters.likes == {"a": 6, "b": 2}


async def test_question_ids_are_unique(store: Store):
    await store.create_show(new_show("s7", "T", SIDES))
    ids = [await store.next_question_id("s7") for _ in range(5)]
    assert len(set(ids)) == 5


async def test_timeline_has_every_event_and_samples(store: Store):
    await store.create_show(new_show("s8", "T", SIDES))
    await store.commit("s8", [q("q1"), q("q1", "approved")])
    await store.sample("s8", 2, {"likes": {"a": 1, "b": 0}, "viewers": 3})
    if not hasattr(store, "shows"):  # Redis: a second process in the same interval adds no duplicate
        await store.sample("s8", 2, {"likes": {"a": 1, "b": 0}, "viewers": 3})
    await wait_events(store, 2)
    await store.flush()  # the embedded store writes samples in the background: wait for them
    tl = await store.timeline("s8")
    assert [(e["seq"], e["type"]) for e in tl] == [(1, "question"), (2, "question"), (2, "sample")]
    assert tl[1]["question"]["status"] == "approved" and tl[0]["ts"] > 0


async def test_unvote(store: Store):
    await store.create_show(new_show("s9", "T", SIDES))
    await store.vote("s9", 1, "d1", "a")
    await store.vote("s9", 1, "d2", "b")
    await store.unvote("s9", 1, "d1")
    await store.unvote("s9", 1, "d1")  # twice: no effect
    await store.unvote("s9", 1, "nobody")
    assert await store.vote_counts("s9", 1) == {"a": 0, "b": 1}
    assert (await store.device_state("s9", 1, "d1"))[0] is None


async def test_reset_counters(store: Store):
    await store.create_show(new_show("s10", "T", SIDES))
    await store.tick("s10", {"a": 5, "b": 1}, 1, 4)
    await store.vote("s10", 1, "d1", "a")
    await store.see_device("s10", "d1")
    await store.reset_counters("s10")
    c = await store.tick("s10", {"a": 0, "b": 0}, 1, 0)
    assert c.likes == {"a": 0, "b": 0} and c.votes == {"a": 0, "b": 0}
    assert c.peak_viewers == 0 and c.unique_viewers == 0


async def test_compare_and_set_accepts_defaults_never_stored(store: Store):
    """A show stored before a field existed: its default matches the missing field."""
    from server.domain.show import field_value
    state = new_show("s11", "T", SIDES)
    await store.create_show(state)
    if hasattr(store, "shows"):  # embedded: forget the field as an old database would
        del store.shows["s11"].fields["banned"]
    else:
        await store.redis.hdel(store.k("s11", "f"), "banned")
    event = {"type": "show", "show": {"banned": ["dev"]}}
    await store.commit("s11", [event], {"banned": field_value(state, "banned")})
    assert (await store.load("s11")).banned == ["dev"]
    with pytest.raises(Conflict):  # but a stored, different value still conflicts
        await store.commit("s11", [event], {"banned": field_value(state, "banned")})


async def test_public_sequence_skips_private_events(store: Store):
    await store.create_show(new_show("s12", "T", SIDES))
    pending = {**q("q1"), "public": False}
    await store.commit("s12", [pending, q("q1", "approved"), {**q("q2"), "public": False}, q("q2", "approved")])
    await wait_events(store, 4)
    assert [n for _, n, _ in store.events] == [1, 2, 3, 4]
    assert store.pseqs == [0, 1, 0, 2]
    state = await store.load("s12")
    assert (state.seq, state.pseq) == (4, 2)
