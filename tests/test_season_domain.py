"""The season's pure rules: guest records, polls and ballots, talk requests and their
workflow, talks and sign-ups (server/domain/guests.py, polls.py, invitations.py)."""

import pytest

from server.domain import DomainError
from server.domain import guests as g
from server.domain import invitations as inv
from server.domain import polls as p
from server.domain.fields import Invalid, masked_mobile, mobile
from server.domain.integrity import VoteCounts
from server.domain.show import new_show

DAY = 86_400_000
REQUEST = {
    "unit": "南丰镇机电工业园区",
    "unit_type": "park",
    "district": "南丰镇",
    "contact": "陈主任",
    "phone": "138 1234 5678",
    "topic": "非公企业党建",
    "audience": "47",
    "dates": "九月中旬",
    "consent": True,
}


def fields_of(exc: Invalid) -> set[str]:
    return set(exc.fields())


# -- fields ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,number",
    [
        ("13812345678", "13812345678"),
        ("138 1234 5678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),
        ("008613812345678", "13812345678"),
        ("12812345678", None),
        ("1381234567", None),
        ("0512-58123456", None),
        ("abc", None),
    ],
)
def test_chinese_mobile_numbers(raw, number):
    assert mobile(raw) == number


def test_a_masked_number_shows_only_its_ends():
    assert masked_mobile("13812345678") == "138****5678"


# -- guests ---------------------------------------------------------------------------------


def test_a_guest_needs_a_name_and_keeps_its_limits():
    with pytest.raises(Invalid) as e:
        g.check_guest({"name": " ", "sector": "bank", "bio": "长" * 601, "topics": ["x"] * 9})
    assert fields_of(e.value) == {"name", "sector", "bio", "topics"}
    clean = g.check_guest({"name": " 王伟 ", "topics": "民营医院党建、服务群众\n服务群众"})
    assert clean["name"] == "王伟" and clean["topics"] == ["民营医院党建", "服务群众"] and clean["sector"] == "other"


def test_the_public_view_of_a_guest_has_no_contact():
    guest = g.new_guest("g1", {"name": "王伟", "contact": "13812345678 微信 ww"}, 1)
    assert "contact" not in guest.public_view() and "13812345678" not in str(guest.public_view())
    assert g.Guest.from_record({**guest.record(), "version": 3}).contact == guest.contact


def test_a_guests_episodes_and_results():
    sides = {"a": {"guest": "王伟", "guest_id": "g1"}, "b": {"guest": "杨玭"}}
    state = new_show("ep1", "第一期", sides, status="ended")
    state.rounds = [{"votes": {"a": 30, "b": 10}}, {"votes": {"a": 20, "b": 40}}, {"votes": {"a": 25, "b": 25}}]
    state.rounds_won = {"a": 2, "b": 1}
    state.counters.likes = {"a": 300, "b": 100}
    (one,) = g.appearances("g1", [state, new_show("ep2", "第二期", {"a": {}, "b": {}})])
    assert (one.outcome, one.rounds_won, one.rounds_lost, one.likes, one.votes) == ("won", 2, 1, 300, 75)
    assert one.likes_share == 0.75 and one.vote_share == 0.5 and one.opponent == "杨玭"
    assert g.appearances("g2", [state]) == []


def test_a_side_from_the_roster_takes_the_guests_name_and_org():
    guest = g.new_guest("g1", {"name": "王伟", "org": "澳洋医院", "title": "党委副书记"}, 1)
    side = g.side_from_guest({"name": "红方", "guest": "typed", "guest_id": "g1"}, guest)
    assert side == {"name": "红方", "guest": "王伟", "guest_id": "g1", "org": "澳洋医院党委副书记"}


# -- polls ----------------------------------------------------------------------------------


def poll(**kw) -> p.Poll:
    data = {
        "slug": "fav",
        "title": "我最喜欢的书记",
        "options": [{"id": "g1", "label": "王伟"}, {"id": "g2", "label": "杨玭"}, {"id": "o3", "label": "其他"}],
        **kw,
    }
    return p.check_poll(data, now=1_000)


def test_a_poll_is_checked_field_by_field():
    with pytest.raises(Invalid) as e:
        p.check_poll(
            {
                "slug": "Bad Slug",
                "title": "",
                "options": [{"id": "a", "label": "x"}],
                "reveal": "never",
                "opens": "tomorrow",
            },
            now=0,
        )
    assert fields_of(e.value) == {"slug", "title", "options", "reveal", "opens"}
    with pytest.raises(Invalid) as e:
        poll(options=[{"id": "a", "label": "x"}, {"id": "a", "label": "y"}])
    assert fields_of(e.value) == {"options"}
    with pytest.raises(Invalid) as e:
        poll(opens=5_000, closes=4_000)
    assert fields_of(e.value) == {"closes"}
    assert poll(opens="2026-06-20T09:00+08:00").opens == 1781917200000


def test_a_poll_opens_and_closes_in_time_and_by_hand():
    timed = poll(opens=2_000, closes=3_000)
    assert [timed.status(t) for t in (1_999, 2_000, 2_999, 3_000)] == ["closed", "open", "open", "closed"]
    assert timed.upcoming(1_999) and not timed.upcoming(3_000)
    closed = p.close(poll(), 5_000)
    assert closed.status(5_000) == "closed"
    with pytest.raises(DomainError) as e:
        p.close(closed, 6_000)
    assert e.value.code == "conflict"
    assert p.reopen(closed, 7_000).status(7_000) == "open"


def test_a_ballot_obeys_the_polls_rules():
    two = poll(choices=2)
    assert p.ballot_choice(two, ["o3", "g1"], 2_000) == "g1,o3"  # the options' order
    assert p.ballot_choice(two, "g2", 2_000) == "g2"
    for bad in (["g1", "g2", "o3"], ["g1", "g1"], ["nope"], [], None, [3]):
        with pytest.raises(DomainError) as e:
            p.ballot_choice(two, bad, 2_000)
        assert e.value.code == "invalid"
    with pytest.raises(DomainError) as e:
        p.ballot_choice(p.close(two, 2_000), "g1", 3_000)
    assert e.value.code == "conflict" and "closed" in e.value.message


def test_results_split_ballots_per_option_and_hide_until_the_close():
    counts = VoteCounts({"g1": 3, "g1,o3": 2, "g2": 1}, {"g2": 4}, {"network": 4, "burst": 0})
    hidden = poll(choices=2, reveal="close")
    res = p.results(hidden, counts)
    assert res.counted == {"g1": 5, "g2": 1, "o3": 2} and res.ballots == 6
    assert res.held == {"g1": 0, "g2": 4, "o3": 0} and res.held_ballots == 4
    public = p.public_view(hidden, res, 2_000)
    assert public["status"] == "open" and public["ballots"] == 6
    assert [o["votes"] for o in public["options"]] == [None, None, None]
    assert "held" not in str(public)
    assert [o["votes"] for o in p.public_view(p.close(hidden, 3_000), res, 4_000)["options"]] == [5, 1, 2]
    producer = p.producer_view(hidden, res, 2_000)
    assert [(o["votes"], o["held"]) for o in producer["options"]] == [(5, 0), (1, 4), (2, 0)]
    assert [(rank, o["id"], n) for rank, o, n in p.standing(hidden, res)] == [(1, "g1", 5), (2, "o3", 2), (3, "g2", 1)]


# -- requests and their workflow -------------------------------------------------------------------


def test_a_request_names_every_bad_field_and_needs_consent():
    with pytest.raises(Invalid) as e:
        inv.check_request({**REQUEST, "phone": "0512-5812", "audience": "many", "unit_type": "bank",
                           "consent": "yes", "unit": ""}, set())  # fmt: skip
    assert fields_of(e.value) == {"phone", "audience", "unit_type", "consent", "unit"}
    with pytest.raises(Invalid) as e:
        inv.check_request({**REQUEST, "guest_id": "g9"}, {"g1"})
    assert fields_of(e.value) == {"guest_id"}
    clean = inv.check_request({**REQUEST, "guest_id": "g1"}, {"g1"})
    assert clean["phone"] == "13812345678" and clean["audience"] == 47 and clean["guest_ids"] == ["g1"]
    assert inv.check_request({**REQUEST, "guest_id": "any"}, {"g1"})["guest_ids"] == []


def request(status: str = "new") -> inv.Invitation:
    r = inv.new_invitation("r1", inv.check_request(REQUEST, {"g1"}), 1_000)
    return inv.Invitation.from_record({**r.record(), "status": status})


def test_the_workflow_goes_new_contacted_scheduled_done():
    r = inv.transition(request(), {"status": "contacted", "note": "已电话联系"}, "小李", 2_000, {"g1"})
    with pytest.raises(Invalid) as e:
        inv.transition(r, {"status": "scheduled", "date": "2017-02-30", "time": "25:00"}, "小李", 3_000, {"g1"})
    assert fields_of(e.value) == {"date", "time", "place", "guest_id"}
    r = inv.transition(r, {"status": "scheduled", "date": "2017-08-31", "place": "园区会议室", "guest_id": "g1"},
                       "小李", 3_000, {"g1"})  # fmt: skip
    r = inv.transition(r, {"status": "done", "attendance": "47", "note": "反响热烈"}, "小王", 4_000, {"g1"})
    assert r.status == "done" and r.closed == 4_000 and r.outcome == {"attendance": 47, "note": "反响热烈"}
    assert [(h["by"], h.get("from"), h["to"], h["at"]) for h in r.history] == [
        ("", None, "new", 1_000), ("小李", "new", "contacted", 2_000), ("小李", "contacted", "scheduled", 3_000),
        ("小王", "scheduled", "done", 4_000)]  # fmt: skip
    talk = inv.talk_of(r)
    assert (talk.status, talk.attendance, talk.guest_ids, talk.kind) == ("done", 47, ["g1"], "lesson")


@pytest.mark.parametrize(
    "start,to",
    [
        ("new", "scheduled"),
        ("new", "done"),
        ("contacted", "done"),
        ("done", "declined"),
        ("declined", "contacted"),
        ("done", "contacted"),
    ],
)
def test_an_impossible_transition_is_a_conflict(start, to):
    data = {"status": to, "date": "2017-08-31", "place": "x", "guest_id": "g1", "attendance": "1", "reason": "x"}
    with pytest.raises(DomainError) as e:
        inv.transition(request(start), data, "小李", 2_000, {"g1"})
    assert e.value.code == "conflict"


def test_declined_from_any_state_before_done_with_a_reason():
    for start in ("new", "contacted", "scheduled"):
        with pytest.raises(Invalid):
            inv.transition(request(start), {"status": "declined"}, "x", 2_000, set())
        r = inv.transition(request(start), {"status": "declined", "reason": "时间不合适"}, "x", 2_000, set())
        assert r.status == "declined" and r.closed == 2_000


def test_contact_data_is_erased_after_the_retention_and_counts_stay():
    done = inv.transition(request("scheduled"), {"status": "done", "attendance": "30"}, "x", 10 * DAY, set())
    assert not inv.due_for_erasure(done, 39 * DAY, 30 * DAY)
    assert inv.due_for_erasure(done, 40 * DAY, 30 * DAY)
    assert not inv.due_for_erasure(request("contacted"), 400 * DAY, 30 * DAY)
    erased = inv.erase(done, 40 * DAY)
    assert (erased.contact, erased.phone, erased.notes) == ("", "", "") and erased.erased == 40 * DAY
    assert erased.outcome["attendance"] == 30 and erased.unit == done.unit and erased.status == "done"
    assert not inv.due_for_erasure(erased, 80 * DAY, 30 * DAY)


def test_sign_ups_fill_the_places_then_wait_and_move_up():
    rows = [{"key": k} for k in "abcd"]
    assert inv.position(2, rows, "b") == ("registered", 2) and inv.position(2, rows, "d") == ("waiting", 2)
    rows[0]["cancelled"] = 1
    assert inv.position(2, rows, "c") == ("registered", 2) and inv.position(2, rows, "a") == ("", 0)
    assert inv.places(2, rows) == inv.Places(2, 1, 2)
    with pytest.raises(Invalid) as e:
        inv.check_signup({"name": "", "phone": "123", "consent": False})
    assert fields_of(e.value) == {"name", "phone", "consent"}
