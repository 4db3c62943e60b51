"""Verdicts people can trust (issue 15): the swing of the room, sealed rounds, the
speaking clock — pure rules first, then through real sockets."""

import asyncio
import re

import httpx
import pytest
from conftest import Clients, create_show, host_cookies

from server.domain import DomainError
from server.domain import verdict as v

# -- the rules --------------------------------------------------------------------------------


def test_the_swing_counts_devices_that_took_both_stances():
    m = v.empty_matrix()
    # 10 devices took both: 4 a->a, 1 a->b, 3 b->b, 2 u->b
    m["a"]["a"], m["a"]["b"], m["b"]["b"], m["u"]["b"] = 4, 1, 3, 2
    s = v.swing(m)
    assert s["devices"] == 10
    assert s["before"] == {"a": 0.5, "b": 0.3, "u": 0.2} and s["after"] == {"a": 0.4, "b": 0.6, "u": 0.0}
    assert s["gain"] == {"a": -10.0, "b": 30.0} and s["winner"] == "b"
    assert v.swing(v.empty_matrix()) is None
    assert v.shares({"a": 1, "b": 3, "u": 0}) == {"a": 0.25, "b": 0.75, "u": 0.0}


def test_a_changed_post_stance_moves_the_device_in_the_matrix():
    m = v.empty_matrix()
    v.move(m, "u", None, "a")
    v.move(m, "u", "a", "b")
    v.move(m, None, None, "a")  # no pre stance: not in the matrix
    assert m["u"] == {"a": 0, "b": 1, "u": 0} and v.both(m) == 1


def test_stance_phases_open_and_close():
    phases = v.default_phases()
    phases = v.decide_stance_phase(phases, "pre", "open")
    assert phases == {"pre": "open", "post": "idle"}
    with pytest.raises(DomainError):
        v.decide_stance_phase(phases, "pre", "open")
    phases = v.decide_stance_phase(phases, "post", "open")  # the post one closes the pre one
    assert phases == {"pre": "closed", "post": "open"}
    assert v.decide_stance_phase(phases, "post", "close")["post"] == "closed"


def test_the_speaking_clock():
    floor = v.empty_floor()
    floor = v.decide_floor(floor, "a", 1_000)
    floor = v.decide_floor(floor, "b", 61_000)  # a spoke 60 s
    assert v.floor_totals(floor, 91_000) == {"a": 60_000, "b": 30_000, "host": 0}
    floor = v.decide_floor(floor, None, 91_000)
    assert floor["holder"] is None and floor["totals"]["b"] == 30_000
    assert v.lead_share({"a": 60_000, "b": 30_000, "host": 0}) == pytest.approx(1 / 3)
    with pytest.raises(DomainError):
        v.decide_floor(floor, None, 92_000)  # nobody had it already


def test_the_final_planned_round_is_sealed_by_default():
    assert v.sealed_by_default(3, 3, True) and not v.sealed_by_default(2, 3, True)
    assert not v.sealed_by_default(3, 3, False) and not v.sealed_by_default(1, 0, True)


# -- through sockets ----------------------------------------------------------------------------


async def test_the_swing_verdict_from_a_dozen_phones(clients, show, server):
    console = await clients.console(show)
    overlay = await clients.overlay(show)
    phones = [await clients.audience(show) for _ in range(12)]
    assert (await phones[0].request({"type": "stance", "phase": "pre", "side": "a"}))["code"] == "conflict"
    assert (await console.request({"type": "stance.open", "phase": "pre"}))["type"] == "ack"
    pre = ["a"] * 5 + ["b"] * 4 + ["u"] * 3
    for phone, side in zip(phones, pre):
        assert (await phone.request({"type": "stance", "phase": "pre", "side": side}))["counted"] is True
    assert (await phones[0].request({"type": "stance", "phase": "pre", "side": "a"}))["type"] == "ack"  # again
    await console.request({"type": "stance.close", "phase": "pre"})
    assert (await phones[1].request({"type": "stance", "phase": "pre", "side": "b"}))["code"] == "conflict"
    await console.request({"type": "stance.open", "phase": "post"})
    # the room moves: two a -> b, all three undecided -> b, one b -> a; two phones skip the post stance
    post = ["a", "a", "b", "b", "a", "b", "b", "b", "a", "b", "b", None]
    for phone, side in zip(phones, post):
        if side:
            await phone.request({"type": "stance", "phase": "post", "side": side})
    phones[-1].frames.clear()
    t = await overlay.wait_for(
        lambda f: f["type"] == "tally" and "stance" in f and sum(f["stance"]["post"].values()) == 11
    )
    stance = t["stance"]
    assert stance["pre"] == {"a": 5, "b": 4, "u": 3}
    assert stance["post"] == {"a": 4, "b": 7, "u": 0}
    swing = stance["swing"]
    assert swing["devices"] == 11  # only devices that took both count in the swing
    assert stance["matrix"]["u"]["b"] == 2 and stance["matrix"]["a"]["b"] == 2 and stance["matrix"]["b"]["a"] == 1
    assert swing["winner"] == "b" and swing["gain"]["b"] > 0 > swing["gain"]["a"]
    assert stance["post_shares"]["b"] == round(7 / 11, 4)
    snap = (await clients.audience(show)).frames[0]
    assert snap["show"]["stance"]["swing"]["winner"] == "b"
    back = await clients.audience(show, cookie=phones[2].ws.request.headers["Cookie"].split("=", 1)[1])
    assert back.frames[0]["you"]["stance"] == {"pre": "a", "post": "b"}
    with httpx.Client(base_url=server.url, cookies=host_cookies(server.url)) as http:
        report = http.get(f"/shows/{show}/report").text
    matrix = re.search(r'<table class="data matrix" id="matrix">.*?</table>', report, re.S).group(0)
    cells = [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', matrix)]
    assert cells == [3, 2, 0, 1, 3, 0, 0, 2, 0]  # rows a, b, u; columns a, b, u
    assert "11" in re.search(r'<p class="verdict-line">(.*?)</p>', report, re.S).group(1)


async def test_a_sealed_round_leaks_nowhere_until_it_ends(clients, show, server):
    console = await clients.console(show)
    overlay = await clients.overlay(show)
    phone = await clients.audience(show)
    voters = [await clients.audience(show) for _ in range(3)]
    start = {"type": "round.start", "topic": "封存轮", "duration_s": 60, "sealed": True}
    assert (await console.request(start))["type"] == "ack"
    for voter, side in zip(voters, "abb"):
        assert (await voter.request({"type": "vote", "side": side}))["type"] == "ack"
    t = await console.wait_for(lambda f: f["type"] == "tally" and f["votes"] == {"a": 1, "b": 2})
    assert t["votes"] == {"a": 1, "b": 2}  # the console sees the split
    o = await overlay.wait_for(lambda f: f["type"] == "tally" and f.get("ballots") == 3)
    p = await phone.wait_for(lambda f: f["type"] == "tally" and f.get("ballots") == 3)
    assert o["votes"] is None and p["votes"] is None
    for frame in overlay.frames + phone.frames:
        assert '"b": 2' not in str(frame) and "'b': 2" not in str(frame), frame
    late = await clients.audience(show)
    assert late.frames[0]["show"]["tally"]["votes"] is None and late.frames[0]["show"]["round"]["sealed"] is True
    api = httpx.get(f"{server.url}/api/shows/{show}").json()
    assert api["show"]["tally"]["votes"] is None and api["show"]["tally"]["ballots"] == 3
    metrics = httpx.get(f"{server.url}/metrics").text
    assert not re.search(r"vote", metrics, re.I) or "leitai_votes" not in metrics
    with httpx.Client(base_url=server.url, cookies=host_cookies(server.url)) as http:
        export = http.get(f"/api/shows/{show}/export?format=json").json()
        report = http.get(f"/shows/{show}/report").text
    assert all(e.get("votes") is None for e in export["entries"] if e["type"] == "sample" and e.get("round") == 1)
    assert "封存" in report or "sealed" in report.lower()
    # the reveal: at round.end, to everyone
    await console.request({"type": "round.end"})
    r = await overlay.wait_for(lambda f: f["type"] == "round" and f["round"]["status"] == "finished")
    assert r["rounds"][-1]["votes"] == {"a": 1, "b": 2} and r["rounds"][-1]["winner"] == "b"
    assert r["rounds"][-1]["sealed"] is True


async def test_the_final_planned_round_is_sealed_unless_the_show_says_no(server):
    slug = create_show(server.url, plan=[{"topic": "一", "duration_s": 60}, {"topic": "二", "duration_s": 60}])
    made = Clients(server)
    try:
        console = await made.console(slug)
        for expected in (False, True):
            await console.request({"type": "round.start", "topic": "t", "duration_s": 60})
            f = await console.wait_for(
                lambda f: (
                    f["type"] == "round"
                    and f["round"]["status"] == "running"
                    and f["round"]["index"] == (2 if expected else 1)  # noqa: B023 (awaited in this iteration)
                )
            )
            assert f["round"]["sealed"] is expected
            await console.request({"type": "round.end"})
    finally:
        await made.close()


async def test_the_speaking_clock_runs_for_whoever_has_the_floor(clients, show):
    console = await clients.console(show)
    overlay = await clients.overlay(show)
    await console.request({"type": "round.start", "topic": "发言", "duration_s": 60})
    assert (await console.request({"type": "floor.set", "holder": "a"}))["type"] == "ack"
    f = await overlay.wait_for(
        lambda f: f["type"] == "show" and "floor" in f["show"] and f["show"]["floor"]["holder"] == "a"
    )
    assert set(f["show"]["floor"]["totals"]) == {"a", "b", "host"}
    await asyncio.sleep(0.2)  # models a speaking for a moment
    await console.request({"type": "floor.set", "holder": "b"})
    g = await overlay.wait_for(
        lambda f: f["type"] == "show" and "floor" in f["show"] and f["show"]["floor"]["holder"] == "b"
    )
    assert g["show"]["floor"]["totals"]["a"] >= 200
    assert (await console.request({"type": "floor.set", "holder": "b"}))["code"] == "conflict"
    assert (await console.request({"type": "floor.set", "holder": "judge"}))["code"] == "invalid"
    await console.request({"type": "round.end"})
    r = await overlay.wait_for(lambda f: f["type"] == "round" and f["round"]["status"] == "finished")
    floor = r["rounds"][-1]["floor"]
    assert floor["a"] >= 200 and floor["b"] >= 0 and floor["host"] == 0
    reset = await overlay.wait_for(
        lambda f: f["type"] == "show" and "floor" in f["show"] and f["show"]["floor"]["holder"] is None,
        start=overlay.frames.index(r),
    )
    assert reset["show"]["floor"]["totals"] == {"a": 0, "b": 0, "host": 0}
