"""Unit tests of the pure domain (no I/O)."""

import pytest

from server.domain import DomainError, votes
from server.domain import rounds as r
from server.domain import show as s
from server.domain.integrity import VoteCounts
from server.domain.likes import LikeBuffer, split
from server.domain.questions import Question
from server.domain.ratelimit import TokenBucket
from server.domain.text import normalise, single_line

SIDES = {"a": {"name": "红方"}, "b": {"name": "蓝方"}}


def state_with(*questions: Question) -> s.ShowState:
    st = s.new_show("t", "T", SIDES)
    for q in questions:
        st.apply({"type": "question", "question": q.record()})
    return st


def q(qid: str, status: str = "pending") -> Question:
    return Question(qid, "text", "", status, 0, "dev")


def test_round_clock_survives_pauses():
    r0 = r.Round()
    r1 = r.start(r0, "topic", 60, now=1_000)
    assert r1.remaining_ms(11_000) == 50_000
    r2 = r.pause(r1, 21_000)
    assert r2.remaining_ms(99_000) == 40_000  # paused: the clock stands
    r3 = r.resume(r2, 100_000)
    assert r3.remaining_ms(110_000) == 30_000
    assert r3.remaining_ms(10**9) == 0  # time's up, never negative
    r4 = r.end(r3, 110_000)
    assert r4.status == "finished" and r4.remaining_ms(10**9) == 30_000


@pytest.mark.parametrize("action,status", [(r.pause, "idle"), (r.resume, "running"), (r.end, "finished")])
def test_round_illegal_transitions(action, status):
    with pytest.raises(DomainError) as e:
        action(r.Round(1, "t", status, 60), 0)
    assert e.value.code == "conflict"


def test_round_start_checks():
    with pytest.raises(DomainError):
        r.start(r.Round(1, "t", "running", 60, 0, 0), "x", 60, 0)
    with pytest.raises(DomainError):
        r.start(r.Round(), "x", 9, 0)
    assert r.start(r.Round(1, "t", "finished", 60), "x", 60, 0).index == 2


def test_winner():
    assert r.winner({"a": 2, "b": 1}) == "a"
    assert r.winner({"a": 2, "b": 3}) == "b"
    assert r.winner({"a": 2, "b": 2}) is None


def test_votes_move_not_add():
    c = {"a": 0, "b": 0}
    c = votes.change(c, None, "a")
    c = votes.change(c, "a", "a")
    assert c == {"a": 1, "b": 0}
    assert votes.change(c, "a", "b") == {"a": 0, "b": 1}


def test_only_one_featured():
    st = state_with(q("q1", "approved"), q("q2", "approved"))
    for ev in s.decide_moderation(st, "q1", "feature"):
        st.apply(ev)
    assert st.featured == "q1"
    events = s.decide_moderation(st, "q2", "feature")
    for ev in events:
        st.apply(ev)
    assert st.featured == "q2"
    assert st.questions["q1"].status == "approved" and st.questions["q2"].status == "featured"
    for ev in s.decide_moderation(st, "q2", "answered"):
        st.apply(ev)
    assert st.featured is None and st.questions["q2"].status == "answered"


@pytest.mark.parametrize(
    "status,action,ok",
    [
        ("pending", "approve", True),
        ("pending", "unfeature", False),
        ("rejected", "feature", False),
        ("answered", "answered", False),
        ("featured", "reject", True),
        ("rejected", "approve", True),
    ],
)
def test_moderation_table(status, action, ok):
    st = state_with(q("q1", status))
    if ok:
        assert s.decide_moderation(st, "q1", action)
    else:
        with pytest.raises(DomainError) as e:
            s.decide_moderation(st, "q1", action)
        assert e.value.code == "conflict"


def test_round_end_counts_wins():
    st = state_with()
    for ev in s.decide_round(st, "start", 0, "t", 60):
        st.apply(ev)
    counts = VoteCounts({"a": 5, "b": 2}, {"a": 0, "b": 3}, {"network": 3, "burst": 0})
    for ev in s.decide_round(st, "end", 1000, votes=counts):
        st.apply(ev)
    assert st.rounds_won == {"a": 1, "b": 0}  # the held votes do not count
    assert st.rounds[-1] == {
        "index": 1,
        "topic": "t",
        "duration_s": 60,
        "votes": {"a": 5, "b": 2},
        "held": {"network": 3, "burst": 0},
        "winner": "a",
        "sealed": False,
        "floor": {"a": 0, "b": 0, "host": 0},
    }


def test_state_round_trips_through_fields():
    st = state_with(q("q1", "approved"), q("q2"))
    for ev in s.decide_points(st, "a", 4) + s.decide_moderation(st, "q1", "feature"):
        st.apply(ev)
    back = s.ShowState.from_fields("t", st.fields(), {"q1": 3})
    assert back.points == {"a": 4, "b": 0} and back.featured == "q1"
    assert back.questions["q1"].upvotes == 3 and back.questions["q2"].status == "pending"
    assert back.view(0, console=True) == {
        **st.view(0, console=True),
        "questions": back.view(0, console=True)["questions"],
    }


def test_public_view_hides_pending_and_device():
    st = state_with(q("q1", "approved"), q("q2"))
    public = st.view(0, console=False)["questions"]
    assert [x["id"] for x in public] == ["q1"] and "device" not in public[0]
    console = st.view(0, console=True)["questions"]
    assert {x["id"] for x in console} == {"q1", "q2"} and console[0]["device"] == "dev"


def test_new_show_validation():
    with pytest.raises(DomainError):
        s.new_show("Bad", "T", SIDES)
    with pytest.raises(DomainError):
        s.new_show("ok", "", SIDES)
    with pytest.raises(DomainError):
        s.new_show("ok", "T", {"a": {}})
    with pytest.raises(DomainError):
        s.new_show("ok", "T", SIDES, plan=[{"topic": "x", "duration_s": 1}])
    st = s.new_show("ok", "T", SIDES, plan=[{"topic": "x", "duration_s": 60}])
    assert st.sides["a"]["color"].startswith("#") and st.plan == [{"topic": "x", "duration_s": 60}]


def test_normalise():
    assert normalise("ＡＢＣ１２３") == "ABC123"  # full-width folded
    assert normalise("a\u200bb\u202ec\u2066d") == "abcd"  # zero-width and bidi controls gone
    assert normalise("  a   b \x07 ") == "a b"
    assert single_line("a\n\nb") == "a b"


def test_token_bucket():
    b = TokenBucket(rate=2, burst=2)
    assert b.take(0) == 0 and b.take(0) == 0
    assert b.take(0) == pytest.approx(0.5)
    assert b.take(0.5) == 0


def test_like_buffer_restore_is_bounded():
    buf = LikeBuffer()
    buf.add("d1", "a", 5)
    d = buf.drain()
    assert not buf and d == {"d1": [5, 0]}
    assert buf.restore({"d1": [5, 0], "d2": [0, 10]}, cap=8) == 7
    assert buf.pending == {"d1": [5, 0], "d2": [0, 3]} and buf.sides() == {"a": 5, "b": 3}


def test_a_devices_capped_taps_split_between_sides():
    assert split([30, 0], 20) == [20, 0]
    assert split([3, 4], 20) == [3, 4]
    assert split([30, 10], 20) == [15, 5]
    assert split([0, 0], 5) == [0, 0]


def test_networks_and_the_vote_rules():
    from server.domain import integrity as i

    assert i.network_of("203.0.113.77") == "203.0.113.0/24"
    assert i.network_of("2001:db8:1:2:3::9") == "2001:db8:1::/56"
    assert i.network_of("::ffff:203.0.113.9") == "203.0.113.0/24"
    assert i.network_of("bogus") == "unknown" and i.masked("203.0.113.0/24") == "203.0.113.x"
    venue = i.parse_networks(["10.20.0.0/16"])
    assert i.in_networks("10.20.3.4", venue) and not i.in_networks("10.21.0.1", venue)
    policy = i.VotePolicy(per_network=2, burst=3)
    v = i.Voter("n1", False, 0)
    assert i.assess(None, "a", v, 0, policy, 1, 0).status == "counted"
    assert i.assess(None, "a", v, 0, policy, 2, 0).reason == "network"
    assert i.assess(None, "a", v, 0, policy, 0, 4).reason == "burst"
    assert i.assess(None, "a", i.Voter("n1", True, 0), 0, policy, 99, 99).status == "counted"
    held = i.Ballot("a", "held", "network", "n1")
    assert i.assess(held, "b", v, 0, policy, 0, 0) == i.Ballot("b", "held", "network", "n1")


def test_normalise_keeps_chinese_punctuation():
    assert normalise("书记，怎样？ＯＫ！") == "书记，怎样？OK！"


def test_rehearsal_reset_takes_the_featured_question_off_air():
    st = state_with(q("q1", "approved"), q("q2", "approved"))
    for ev in s.decide_moderation(st, "q1", "feature"):
        st.apply(ev)
    for ev in s.decide_reset(st, 5):
        st.apply(ev)
    assert st.featured is None and st.questions["q1"].status == "approved"
    for ev in s.decide_moderation(st, "q2", "feature"):
        st.apply(ev)
    assert [x.id for x in st.questions.values() if x.status == "featured"] == ["q2"]
    assert st.rehearsal == 5 and st.round.index == 0 and st.points == {"a": 0, "b": 0}


def test_normalise_keeps_emoji_whole_and_drops_hidden_joiners():
    # emoji sequences keep their joiners and presentation selectors (issue 13)
    for whole in ("🧑\u200d💻", "❤\ufe0f", "❤\ufe0f\u200d🔥", "👨🏽\u200d⚕\ufe0f", "1\ufe0f\u20e3", "🏳\ufe0f\u200d🌈"):
        assert normalise(f"加油{whole}!") == f"加油{whole}!", whole
    # between letters they only hide text: gone, so "书记" is "书记" to every filter
    assert normalise("书\u200d记") == "书记"
    assert normalise("a\u200db\ufe0fc") == "abc"
    assert normalise("👍\u200d书") == "👍书"  # a joiner needs an emoji on both sides
    assert normalise("\u200d🧑 x\ufe0f") == "🧑 x"
    assert single_line("🧑\u200d💻  好") == "🧑\u200d💻 好"
