"""One contract, two stores: the same tests against the embedded and the Redis store."""

import asyncio
import itertools
import tempfile
import time

import pytest

from server.domain.integrity import Voter
from server.domain.questions import Question
from server.domain.show import new_show
from server.settings import Settings
from server.store import Conflict, Store, make_store

SIDES = {"a": {"name": "红方"}, "b": {"name": "蓝方"}}
RULES = {"votes_per_network": 3, "vote_burst_max": 4, "like_rate": 10.0, "like_burst": 20.0}
OLD = Voter("10.0.0.0/24", False, 0)  # a device that has watched for a long time


def voter(network: str = "10.0.0.0/24", venue: bool = False, young: bool = False) -> Voter:
    # first seen now (a young device), read at each call: a module-level time goes stale
    # when the suite runs longer than VOTE_YOUNG_S (10 min) before this file's tests
    return Voter(network, venue, int(time.time() * 1000) if young else 0)


_n = itertools.count()


@pytest.fixture(params=["embedded", "redis"])
async def store(request):
    if request.param == "redis":
        srv = request.getfixturevalue("redis_server")
        settings = Settings.from_env(
            redis_url=srv.url, data_dir=tempfile.mkdtemp(), redis_prefix=f"contract{next(_n)}", **RULES
        )
    else:
        settings = Settings.from_env(redis_url="", data_dir=tempfile.mkdtemp(), **RULES)
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
    create = st.create_show

    async def create_and_follow(state) -> None:  # the contract's tests hear every show they make
        await create(state)
        await st.follow(state.slug)

    st.create_show = create_and_follow
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
    await store.vote("s4", 1, "d1", "a", OLD)
    await store.vote("s4", 1, "d1", "a", OLD)
    await store.vote("s4", 1, "d2", "a", OLD)
    await store.vote("s4", 1, "d1", "b", OLD)
    await store.vote("s4", 2, "d1", "a", OLD)
    assert (await store.vote_counts("s4", 1)).counted == {"a": 1, "b": 1}
    assert (await store.vote_counts("s4", 2)).counted == {"a": 1, "b": 0}
    assert (await store.device_state("s4", 1, "d1"))[0] == "b"


async def test_upvotes_once_per_device(store: Store):
    await store.create_show(new_show("s5", "T", SIDES))
    assert await store.upvote("s5", "q1", "d1") == 1
    assert await store.upvote("s5", "q1", "d1") is None
    assert await store.upvote("s5", "q1", "d2") == 2
    assert (await store.device_state("s5", 0, "d1"))[1] == ["q1"]


async def test_tick_adds_likes_and_reports_viewers(store: Store):
    await store.create_show(new_show("s6", "T", SIDES))
    first = await store.see_device("s6", "d1")
    assert await store.see_device("s6", "d1") == first > 0  # first seen stays
    await store.see_device("s6", "d2")
    c = await store.tick("s6", {"d1": [5, 0]}, 0, 3)
    c = await store.tick("s6", {"d1": [1, 0], "d2": [0, 2]}, 0, 2)
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
    await store.vote("s9", 1, "d1", "a", OLD)
    await store.vote("s9", 1, "d2", "b", OLD)
    await store.unvote("s9", 1, "d1")
    await store.unvote("s9", 1, "d1")  # twice: no effect
    await store.unvote("s9", 1, "nobody")
    assert (await store.vote_counts("s9", 1)).counted == {"a": 0, "b": 1}
    assert (await store.device_state("s9", 1, "d1"))[0] is None


async def test_reset_counters(store: Store):
    await store.create_show(new_show("s10", "T", SIDES))
    await store.tick("s10", {"d1": [5, 1]}, 1, 4)
    await store.vote("s10", 1, "d1", "a", OLD)
    await store.see_device("s10", "d1")
    await store.reset_counters("s10")
    c = await store.tick("s10", {}, 1, 0)
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


# -- integrity: both stores carry out domain.integrity the same way -----------------------------


async def test_votes_past_a_networks_budget_are_held_and_kept(store: Store):
    await store.create_show(new_show("i1", "T", SIDES))
    statuses = [(await store.vote("i1", 1, f"d{i}", "a", voter())).status for i in range(5)]
    assert statuses == ["counted"] * 3 + ["held"] * 2  # votes_per_network = 3
    assert (await store.vote("i1", 1, "v1", "b", voter(venue=True))).status == "counted"  # a venue: no budget
    assert (await store.vote("i1", 1, "x1", "b", voter("10.0.9.0/24"))).status == "counted"  # another network
    held = await store.vote("i1", 1, "d4", "b", voter())  # a held vote that changes stays held
    assert (held.status, held.reason, held.side) == ("held", "network", "b")
    counts = await store.vote_counts("i1", 1)
    assert counts.counted == {"a": 3, "b": 2} and counts.held == {"a": 1, "b": 1}
    assert counts.reasons == {"network": 2, "burst": 0}
    await store.unvote("i1", 1, "d3")  # a banned device's held vote goes too
    assert (await store.vote_counts("i1", 1)).held == {"a": 0, "b": 1}
    assert await store.release_votes("i1", 1, "network") == 1
    counts = await store.vote_counts("i1", 1)
    assert counts.counted == {"a": 3, "b": 3} and counts.held == {"a": 0, "b": 0}
    assert counts.reasons == {"network": 0, "burst": 0}


async def test_a_burst_of_new_devices_is_held(store: Store):
    await store.create_show(new_show("i2", "T", SIDES))
    young = [(await store.vote("i2", 1, f"y{i}", "b", voter("10.1.0.0/24", young=True))).reason for i in range(6)]
    assert young == ["", "", "", "burst", "burst", "burst"][:3] + ["burst"] * 3 or young[4:] == ["burst", "burst"]
    assert young.count("burst") >= 2 and young[:3] == ["", "", ""]
    other_side = await store.vote("i2", 1, "z1", "a", voter("10.1.0.0/24", young=True))
    assert other_side.reason != "burst"  # a burst is one side's
    assert (await store.vote_counts("i2", 1)).reasons["burst"] == young.count("burst")


async def test_likes_are_counted_within_each_devices_cap(store: Store):
    await store.create_show(new_show("i3", "T", SIDES))
    c = await store.tick("i3", {"fast": [100, 0], "slow": [3, 4]}, 0, 2)
    assert c.likes == {"a": 20 + 3, "b": 4}  # like_burst = 20 for the fast one
    c = await store.tick("i3", {"fast": [0, 100]}, 0, 2)  # the bucket is spent: refills at 10/s
    assert c.likes["b"] - 4 <= 3


async def test_buckets_are_shared_and_outlive_the_caller(store: Store):
    await store.create_show(new_show("i4", "T", SIDES))
    waits = [await store.take("i4", "dev", "ask", 1.0, 2.0) for _ in range(3)]
    assert waits[:2] == [0, 0] and 0 < waits[2] <= 1.0
    assert await store.take("i4", "other", "ask", 1.0, 2.0) == 0


async def test_replies_are_remembered_and_transient_ones_forgotten(store: Store):
    await store.create_show(new_show("i5", "T", SIDES))
    replies = store.replies("i5")
    assert await replies.begin(("dev", "m1")) is None
    await replies.finish(("dev", "m1"), b'{"type":"ack","id":"m1"}')
    assert await replies.begin(("dev", "m1")) == b'{"type":"ack","id":"m1"}'
    assert await replies.begin(("dev", "m2")) is None
    await replies.finish(("dev", "m2"), None)  # unavailable: a retry runs afresh
    assert await replies.begin(("dev", "m2")) is None


async def test_once_and_counters(store: Store):
    key = f"k{next(_n)}"
    assert await store.once(key, 60) is True
    assert await store.once(key, 60) is False
    assert [await store.count(key, 60) for _ in range(3)] == [1, 2, 3]


async def test_stances_and_the_matrix_of_devices_that_took_both(store: Store):
    await store.create_show(new_show("v1", "T", SIDES))
    for device, pre in (("d1", "a"), ("d2", "a"), ("d3", "u"), ("d4", "b")):
        await store.vote("v1", "pre", device, pre, voter(f"10.9.{device[1]}.0/24"))
    for device, post in (("d1", "b"), ("d3", "a"), ("d5", "a")):  # d5 took no pre stance
        await store.vote("v1", "post", device, post, voter(f"10.9.{device[1]}.0/24"))
    await store.vote("v1", "post", "d1", "a", voter("10.9.1.0/24"))  # changed: a -> a now
    c = await store.stance_counts("v1")
    assert c.pre == {"a": 2, "b": 1, "u": 1} and c.post == {"a": 3, "b": 0, "u": 0}
    assert c.matrix["a"]["a"] == 1 and c.matrix["u"]["a"] == 1 and c.matrix["a"]["b"] == 0
    assert sum(n for row in c.matrix.values() for n in row.values()) == 2
    await store.unvote("v1", "pre", "d3")  # a banned device leaves the matrix too
    c = await store.stance_counts("v1")
    assert c.matrix["u"]["a"] == 0 and c.pre["u"] == 0
    state = await store.device_state("v1", 0, "d1")
    assert state.stances == {"pre": "a", "post": "a"}


async def test_a_selective_store_delivers_only_followed_shows(store: Store):
    """Redis: a show's events reach this process only while it follows the show."""
    await store.create_show(new_show("f1", "T", SIDES))
    await store.create_show(new_show("f2", "T", SIDES))
    await store.unfollow("f2")
    await store.commit("f2", [q("q1")])
    await store.commit("f1", [q("q1")])
    await wait_events(store, 1)
    await store.follow("f2")
    await store.commit("f2", [q("q2")])
    events = await wait_events(store, 2)
    expected = [("f1", 1), ("f2", 2)] if store.selective else [("f2", 1), ("f1", 1)]
    assert [(slug, seq) for slug, seq, _ in events[:2]] == expected


async def test_the_state_has_one_epoch_that_every_process_reads(store: Store):
    """`store.epoch`: a random id made once with the state; another process (or the same
    one started again) on the same state reads the same one. A position in a show's
    history is (epoch, seq): a new epoch means that history is gone."""
    assert isinstance(store.epoch, str) and len(store.epoch) >= 16
    settings = store.settings
    if settings.redis_url:  # another process: its own DATA_DIR, the same Redis and prefix
        settings = Settings.from_env(
            redis_url=settings.redis_url, data_dir=tempfile.mkdtemp(), redis_prefix=settings.redis_prefix
        )
    other = make_store(settings)
    await other.start()
    try:
        assert other.epoch == store.epoch and not other.lost
    finally:
        await other.close()
    fresh = make_store(
        Settings.from_env(redis_url=settings.redis_url, data_dir=tempfile.mkdtemp(), redis_prefix=f"contract{next(_n)}")
    )
    await fresh.start()
    try:
        assert fresh.epoch and fresh.epoch != store.epoch  # another state: another epoch
    finally:
        await fresh.close()
