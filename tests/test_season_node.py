"""The node's season service with real embedded stores and no server: the erasure
sweep, the ballot budget, roster guests on episode sides, counts flowing back."""

import tempfile

import pytest

from server.domain import DomainError
from server.domain.show import new_show
from server.node.season import Season
from server.node.talks import DAY_MS, Limited
from server.node.tasks import Tasks
from server.node.venues import Venues
from server.settings import Settings
from server.store.embedded import EmbeddedStore
from server.store.season_embedded import EmbeddedSeasonStore

REQUEST = {
    "unit": "南丰镇机电工业园区",
    "unit_type": "park",
    "district": "南丰镇",
    "contact": "陈主任",
    "phone": "13812345678",
    "topic": "非公企业党建",
    "audience": 47,
    "dates": "九月",
    "notes": "请回电",
    "consent": True,
}


@pytest.fixture
async def season():
    settings = Settings.from_env(
        data_dir=tempfile.mkdtemp(prefix="leitai-season-node-"),
        contact_retention_days=30,
        poll_vote_rate=0.001,
        poll_vote_burst=2,
        secret_key="s",
    )
    shows = EmbeddedStore(settings)
    await shows.start()
    s = Season(settings, EmbeddedSeasonStore(settings), shows, Venues(settings), Tasks())
    await s.store.start()  # no sweeper task: the tests sweep by hand
    yield s
    await s.store.close()
    await shows.close()


async def test_the_sweep_erases_contact_data_after_the_retention_and_keeps_the_counts(season):
    g = await season.create_guest({"name": "郭本平"})
    talks = season.talks
    r = await talks.request({**REQUEST, "guest_id": g.id}, "10.0.0.1")
    waiting = await talks.request(REQUEST, "10.0.0.2")
    await talks.move(r.id, {"status": "contacted"}, "小李")
    await talks.move(r.id, {"status": "scheduled", "date": "2017-08-31", "place": "园区", "guest_id": g.id}, "小李")
    done = await talks.move(r.id, {"status": "done", "attendance": 47}, "小王")
    assert await talks.sweep(done.closed + 29 * DAY_MS) == 0
    assert (await talks.invitation(r.id)).phone == "13812345678"
    assert await talks.sweep(done.closed + 30 * DAY_MS) == 1
    erased = await talks.invitation(r.id)
    assert (erased.contact, erased.phone, erased.notes) == ("", "", "") and erased.erased
    assert (await talks.invitation(waiting.id)).phone == "13812345678"  # still being handled: kept
    assert (await season.counts())["lessons_done"] == 1 and (await talks.done_per_guest()) == {g.id: 1}
    assert "13812345678" not in str(await season.profile(g.id))
    assert await talks.sweep(done.closed + 90 * DAY_MS) == 0  # once


async def test_sign_ups_lose_their_contact_data_after_their_talk(season):
    g = await season.create_guest({"name": "王伟"})
    talk = await season.talks.add({"kind": "meet", "title": "书记来了", "guest_ids": [g.id], "date": "2999-01-01",
                                   "place": "文化中心", "public": True, "capacity": 1})  # fmt: skip
    first = await season.talks.sign_up(talk.id, {"name": "李", "phone": "13900000001", "consent": True}, "1.2.3.4")
    second = await season.talks.sign_up(talk.id, {"name": "张", "phone": "13900000002", "consent": True}, "1.2.3.4")
    assert first[:2] == ("registered", 1) and second[:2] == ("waiting", 1)
    await season.talks.change(talk.id, {"status": "done", "attendance": 80})
    late = 32503680000000 + 31 * DAY_MS  # 2999-01-01 + 31 days
    assert await season.talks.sweep(late) == 2
    rows = await season.talks.signups(talk.id)
    assert [("name" in r, "phone" in r, bool(r.get("erased"))) for r in rows] == [(False, False, True)] * 2


async def test_a_devices_ballots_are_budgeted(season):
    g1, g2 = await season.create_guest({"name": "王伟"}), await season.create_guest({"name": "杨玭"})
    await season.create_poll({"slug": "fav", "title": "我最喜欢的书记", "options": [{"id": g1.id}, {"id": g2.id}]})
    await season.vote("fav", "dev1", "10.0.0.1", g1.id)
    await season.vote("fav", "dev1", "10.0.0.1", g2.id)
    with pytest.raises(Limited):
        await season.vote("fav", "dev1", "10.0.0.1", g1.id)
    assert await season.my_choice("fav", "dev1") == [g2.id]
    res = await season.results(await season.poll("fav"))
    assert res.counted == {g1.id: 0, g2.id: 1}


async def test_episode_sides_take_their_guest_from_the_roster(season):
    g = await season.create_guest({"name": "王伟", "org": "澳洋医院", "title": "党委副书记"})
    sides = await season.with_guests({"a": {"name": "红方", "guest_id": g.id}, "b": {"name": "蓝方", "guest": "杨玭"}})
    assert sides["a"]["guest"] == "王伟" and sides["a"]["org"] == "澳洋医院党委副书记" and sides["b"]["guest"] == "杨玭"
    with pytest.raises(DomainError) as e:
        await season.with_guests({"a": {"guest_id": "g99"}, "b": {}})
    assert e.value.field == "sides.a.guest_id"
    await season.shows.create_show(new_show("ep1", "第一期", sides))
    season._episodes = (0.0, [])
    profile = await season.profile(g.id)
    assert [e["slug"] for e in profile["episodes"]] == ["ep1"] and profile["guest"]["name"] == "王伟"
