"""The season store's contract, the same tests against the embedded and the Redis store:
versioned records (compare-and-set), ids, photos, poll ballots under the integrity
rules, sign-ups in order; and, embedded, durable before visible."""

import asyncio
import itertools
import sqlite3
import tempfile
import time

import pytest

from server.domain.integrity import Voter
from server.node.season import make_season_store
from server.settings import Settings
from server.store import Conflict, StoreUnavailable
from server.store.season_embedded import EmbeddedSeasonStore

RULES = {"votes_per_network": 3, "vote_burst_max": 4}
_n = itertools.count()


def voter(network: str = "10.0.0.0/24", venue: bool = False, young: bool = False) -> Voter:
    # first seen now (a young device), read at each call: a module-level time goes stale
    # when the suite runs longer than VOTE_YOUNG_S (10 min) before this file's tests
    return Voter(network, venue, int(time.time() * 1000) if young else 0)


def settings_for(kind: str, request, **extra) -> Settings:
    if kind == "redis":
        srv = request.getfixturevalue("redis_server")
        return Settings.from_env(
            redis_url=srv.url, data_dir=tempfile.mkdtemp(), redis_prefix=f"season{next(_n)}", **RULES, **extra
        )
    return Settings.from_env(redis_url="", data_dir=tempfile.mkdtemp(), **RULES, **extra)


@pytest.fixture(params=["embedded", "redis"])
async def store(request):
    st = make_season_store(settings_for(request.param, request))
    await st.start()
    yield st
    await st.close()


async def test_records_are_versioned_and_compared_before_they_are_set(store):
    assert await store.get("guest", "g1") is None
    assert await store.put("guest", "g1", {"id": "g1", "name": "王伟"}, 0) == 1
    with pytest.raises(Conflict):
        await store.put("guest", "g1", {"id": "g1", "name": "again"}, 0)  # exists already
    assert await store.put("guest", "g1", {"id": "g1", "name": "王伟", "version": 1}, 1) == 2
    with pytest.raises(Conflict):
        await store.put("guest", "g1", {"id": "g1", "name": "stale"}, 1)
    assert await store.get("guest", "g1") == {"id": "g1", "name": "王伟", "version": 2}
    await store.put("guest", "g2", {"id": "g2", "name": "杨玭"}, 0)
    assert sorted(r["name"] for r in await store.all("guest")) == ["杨玭", "王伟"]
    assert await store.all("poll") == []


async def test_two_writers_with_the_same_version_one_wins(store):
    await store.put("invitation", "r1", {"id": "r1", "status": "new"}, 0)
    results = await asyncio.gather(*(store.put("invitation", "r1", {"id": "r1", "status": s}, 1)
                                     for s in ("contacted", "declined")), return_exceptions=True)  # fmt: skip
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "int"]
    assert (await store.get("invitation", "r1"))["version"] == 2


async def test_ids_are_never_given_twice(store):
    ids = [await store.next_id("guest") for _ in range(3)]
    assert ids == sorted(set(ids)) and len(ids) == 3
    assert await store.next_id("poll") >= 1


async def test_photos_are_kept_as_bytes(store):
    assert await store.blob("photo:g1") is None
    await store.put_blob("photo:g1", b"\xff\xd8jpeg\x00bytes")
    assert await store.blob("photo:g1") == b"\xff\xd8jpeg\x00bytes"


async def test_one_ballot_per_device_changeable_and_it_keeps_its_status(store):
    first = await store.poll_see("fav", "d1")
    assert await store.poll_see("fav", "d1") == first > 0
    assert (await store.poll_vote("fav", "d1", "g1", voter())).status == "counted"
    await store.poll_vote("fav", "d2", "g1", voter())
    await store.poll_vote("fav", "d1", "g2,g3", voter())  # changed: replaces the first
    counts = await store.poll_counts("fav")
    assert {k: v for k, v in counts.counted.items() if v} == {"g1": 1, "g2,g3": 1}
    assert (await store.poll_ballot("fav", "d1")).side == "g2,g3"
    assert await store.poll_ballot("fav", "d9") is None
    assert await store.poll_counts("other") is not None


async def test_a_networks_ballots_past_its_budget_are_held_and_can_be_counted(store):
    for i in range(5):
        await store.poll_vote("p1", f"d{i}", "g1", voter("10.1.0.0/24"))
    venue = await store.poll_vote("p1", "v1", "g1", voter("10.1.0.0/24", venue=True))
    assert venue.status == "counted"
    counts = await store.poll_counts("p1")
    assert counts.counted["g1"] == 4 and counts.held["g1"] == 2 and counts.reasons["network"] == 2
    changed = await store.poll_vote("p1", "d4", "g2", voter("10.1.0.0/24"))
    assert (changed.status, changed.reason) == ("held", "network")  # a changed ballot keeps its status
    assert await store.poll_release("p1", "") == 2
    counts = await store.poll_counts("p1")
    assert counts.counted["g1"] == 5 and counts.counted["g2"] == 1 and counts.held.get("g1", 0) == 0


async def test_a_burst_of_new_devices_choosing_one_option_is_held(store):
    statuses = [(await store.poll_vote("p2", f"n{i}", "g1", voter("10.2.0.0/24", young=True))).reason
                for i in range(6)]  # fmt: skip
    assert statuses[:3] == ["", "", ""] and "burst" in statuses[3:]


async def test_sign_ups_keep_their_order_once_per_key(store):
    assert await store.signups("t1") == []
    for key in ("k1", "k2", "k3"):
        assert await store.signup("t1", key, {"name": key, "at": 1})
    assert not await store.signup("t1", "k2", {"name": "twice"})
    await store.put_signup("t1", "k1", {"name": "k1", "cancelled": 5})
    rows = await store.signups("t1")
    assert [(r["key"], r["name"], r.get("cancelled")) for r in rows] == [("k1", "k1", 5), ("k2", "k2", None),
                                                                          ("k3", "k3", None)]  # fmt: skip
    with pytest.raises(KeyError):
        await store.put_signup("t1", "nobody", {})


@pytest.mark.parametrize("kind", ["embedded", "redis"])
async def test_a_new_store_on_the_same_data_finds_everything(kind, request):
    settings = settings_for(kind, request)
    first = make_season_store(settings)
    await first.start()
    await first.put("talk", "t1", {"id": "t1", "title": "党课"}, 0)
    await first.put_blob("photo:g1", b"jpeg")
    await first.poll_vote("fav", "d1", "g1", voter())
    await first.signup("t1", "k1", {"name": "李"})
    n = await first.next_id("talk")
    await first.close()
    again = make_season_store(settings)
    await again.start()
    try:
        assert (await again.get("talk", "t1"))["title"] == "党课" and await again.blob("photo:g1") == b"jpeg"
        assert (await again.poll_counts("fav")).counted["g1"] == 1
        assert [r["key"] for r in await again.signups("t1")] == ["k1"]
        assert await again.next_id("talk") > n
    finally:
        await again.close()


class RefusingDb:
    """A SQLite connection whose writes fail (as on a full or broken disk)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, params: tuple = ()) -> object:
        if sql.split()[0] in ("INSERT", "DELETE", "UPDATE"):
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, params)

    def close(self) -> None:
        self.db.close()


async def test_a_failed_write_changes_nothing_anyone_can_see():
    st = EmbeddedSeasonStore(Settings.from_env(data_dir=tempfile.mkdtemp(prefix="leitai-season-"), **RULES))
    await st.start()
    try:
        await st.put("invitation", "r1", {"id": "r1", "status": "new"}, 0)
        await st.poll_vote("fav", "d1", "g1", voter())
        await st.signup("t1", "k1", {"name": "李"})
        st.writer.db = RefusingDb(st.writer.db)
        with pytest.raises(StoreUnavailable):
            await st.put("invitation", "r1", {"id": "r1", "status": "contacted"}, 1)
        with pytest.raises(StoreUnavailable):
            await st.poll_vote("fav", "d1", "g2", voter())
        with pytest.raises(StoreUnavailable):
            await st.poll_vote("fav", "d2", "g2", voter())
        with pytest.raises(StoreUnavailable):
            await st.signup("t1", "k2", {"name": "王"})
        with pytest.raises(StoreUnavailable):
            await st.put_blob("photo:g1", b"x")
        assert (await st.get("invitation", "r1"))["status"] == "new"
        assert (await st.poll_ballot("fav", "d1")).side == "g1" and await st.poll_ballot("fav", "d2") is None
        assert {k: v for k, v in (await st.poll_counts("fav")).counted.items() if v} == {"g1": 1}
        assert [r["key"] for r in await st.signups("t1")] == ["k1"] and await st.blob("photo:g1") is None
        st.writer.db = st.writer.db.db
        assert await st.put("invitation", "r1", {"id": "r1", "status": "contacted"}, 1) == 2  # the same version
    finally:
        await st.close()
