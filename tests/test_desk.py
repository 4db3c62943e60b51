"""The question desk (issue 16): sides, clusters merged and split by hand, undo,
several moderators who see each other, and moderation in the open."""

import pytest
from conftest import Client


async def console_named(clients, show, name: str) -> Client:
    c = await clients.console(show, own_session=True)  # a moderator of their own
    await c.request({"type": "hello", "name": name})
    return c


async def approved(console, phone, text: str, side: str | None = None) -> str:
    msg = {"type": "ask", "text": text, **({"side": side} if side else {})}
    qid = (await phone.request(msg))["question"]
    assert (await console.request({"type": "question.approve", "question": qid}))["type"] == "ack"
    return qid


async def test_a_question_is_addressed_to_a_side_or_both(clients, show):
    console = await clients.console(show)
    phone = await clients.audience(show)
    qid = (await phone.request({"type": "ask", "text": "问红方：怎么做？", "side": "a"}))["question"]
    q = await console.wait_for(lambda f: f["type"] == "question" and f["question"]["id"] == qid)
    assert q["question"]["side"] == "a" and q["question"]["cluster"] == qid
    other = await clients.audience(show)
    assert (await other.request({"type": "ask", "text": "x", "side": "c"}))["code"] == "invalid"


async def test_same_questions_cluster_by_themselves_and_the_host_merges_splits_and_undoes(clients, show):
    console = await console_named(clients, show, "小李")
    overlay = await clients.overlay(show)
    phones = [await clients.audience(show) for _ in range(3)]
    q1 = await approved(console, phones[0], "医院党建怎样让病人少跑腿？")
    q2 = await approved(console, phones[1], "醫院黨建如何讓病人少跑腿")  # the same, in traditional characters
    q3 = await approved(console, phones[2], "志愿服务怎么和社区治理结合？")
    f = await overlay.wait_for(lambda f: f["type"] == "question" and f["question"]["id"] == q2)
    assert f["question"]["cluster"] == q1  # found by the engine, as it was asked
    assert "by" not in f["question"]  # who moderated is the console's business
    assert (await console.request({"type": "question.split", "question": q2}))["type"] == "ack"
    c = await console.wait_for(
        lambda f: f["type"] == "question" and f["question"]["id"] == q2 and f["question"]["cluster"] == q2
    )
    assert c["question"]["by"] == "小李"
    assert (await console.request({"type": "question.undo"}))["type"] == "ack"  # the split is undone
    await overlay.wait_for(
        lambda f: f["type"] == "question" and f["question"]["id"] == q2 and f["question"]["cluster"] == q1
    )
    assert (await console.request({"type": "question.merge", "question": q3, "into": q2}))["type"] == "ack"
    await overlay.wait_for(
        lambda f: f["type"] == "question" and f["question"]["id"] == q3 and f["question"]["cluster"] == q1
    )  # into q2's cluster: q1's
    assert (await console.request({"type": "question.merge", "question": q3, "into": q1}))["code"] == "conflict"
    assert (await console.request({"type": "question.split", "question": q1}))["type"] == "ack"
    # the leader left: the earliest of the rest (q2) leads q3 now
    await overlay.wait_for(
        lambda f: f["type"] == "question" and f["question"]["id"] == q3 and f["question"]["cluster"] == q2
    )
    snap = (await clients.overlay(show)).frames[0]["show"]["questions"]
    assert {q["id"]: q["cluster"] for q in snap} == {q1: q1, q2: q2, q3: q2}
    # the engine follows the host: a new question like q1 joins q1 alone, not q2's card
    q4 = await approved(console, await clients.audience(show), "医院的党建怎么让病人少跑腿呢")
    f = await overlay.wait_for(lambda f: f["type"] == "question" and f["question"]["id"] == q4)
    assert f["question"]["cluster"] in (q1, q2)


async def test_undo_puts_a_moderation_back_and_only_ones_own(clients, show):
    a = await console_named(clients, show, "甲")
    b = await console_named(clients, show, "乙")
    phone = await clients.audience(show)
    q1 = await approved(a, phone, "第一个问题")
    assert (await a.request({"type": "question.feature", "question": q1}))["type"] == "ack"
    assert (await b.request({"type": "question.undo"}))["code"] == "conflict"  # 乙 did nothing yet
    assert (await a.request({"type": "question.undo"}))["type"] == "ack"
    f = await b.wait_for(lambda f: f["type"] == "show" and f["show"].get("featured", "x") is None)
    q = await b.wait_for(
        lambda f: f["type"] == "question" and f["question"]["id"] == q1 and f["question"]["status"] == "approved"
    )
    assert f and q
    assert (await a.request({"type": "question.undo"}))["type"] == "ack"  # the approval too
    await b.wait_for(
        lambda f: f["type"] == "question" and f["question"]["id"] == q1 and f["question"]["status"] == "pending"
    )


async def test_an_undo_gives_way_to_what_another_moderator_did_since(clients, show):
    a = await console_named(clients, show, "甲")
    b = await console_named(clients, show, "乙")
    phone = await clients.audience(show)
    q1 = await approved(a, phone, "后来被别人拒绝了")
    assert (await b.request({"type": "question.reject", "question": q1}))["type"] == "ack"
    late = await a.request({"type": "question.undo"})  # 甲's approval is not 甲's to take back now
    assert late["code"] == "conflict"
    q = await a.wait_for(
        lambda f: f["type"] == "question" and f["question"]["id"] == q1 and f["question"]["status"] == "rejected"
    )
    assert q["question"]["by"] == "乙"


async def test_two_moderators_cannot_air_or_answer_a_question_twice(clients, show):
    a = await console_named(clients, show, "甲")
    b = await console_named(clients, show, "乙")
    phone = await clients.audience(show)
    q1 = await approved(a, phone, "只能上屏一次")
    assert (await a.request({"type": "question.feature", "question": q1}))["type"] == "ack"
    twice = await b.request({"type": "question.feature", "question": q1})
    assert twice["code"] == "conflict" and "甲" in twice["message"]
    assert (await b.request({"type": "question.answered", "question": q1}))["type"] == "ack"
    again = await a.request({"type": "question.answered", "question": q1})
    assert again["code"] == "conflict" and "乙" in again["message"]


async def test_moderators_see_which_card_each_is_on(clients, show):
    a = await console_named(clients, show, "甲")
    b = await console_named(clients, show, "乙")
    phone = await clients.audience(show)
    q1 = await approved(a, phone, "看谁在处理")
    await a.request({"type": "desk.focus", "question": q1})
    seen = await b.wait_for(lambda f: f["type"] == "desk" and f["moderator"]["question"] == q1)
    assert seen["moderator"]["name"] == "甲"
    # each console knows its own id, so it never shows itself as another moderator
    mine = await a.wait_for(lambda f: f["type"] == "desk" and f["moderator"]["question"] == q1)
    assert mine["moderator"]["id"] == a.frames[0]["moderator"] != b.frames[0]["moderator"]
    late = await clients.console(show)
    assert [m["name"] for m in late.frames[0]["desk"] if m["question"] == q1] == ["甲"]
    await a.close()
    gone = await b.wait_for(lambda f: f["type"] == "desk" and f["moderator"].get("left"))
    assert gone["moderator"]["name"] == "甲"


async def test_phones_see_moderation_in_the_open(clients, show):
    console = await clients.console(show)
    phone = await clients.audience(show)
    asker = await clients.audience(show)
    q1 = await approved(console, asker, "收到了吗", side="b")
    await (await clients.audience(show)).request({"type": "ask", "text": "待审核的"})
    await console.request({"type": "question.feature", "question": q1})
    await console.request({"type": "question.answered", "question": q1})
    t = await phone.wait_for(
        lambda f: (
            f["type"] == "tally" and f["question_counts"]["received"] == 2 and f["question_counts"]["answered"] == 1
        )
    )
    counts = t["question_counts"]
    assert counts["on_air"] == 1 and counts["answered_by_side"] == {"a": 0, "b": 1, "both": 0}
    snap = (await clients.audience(show)).frames[0]["show"]
    assert snap["question_counts"]["received"] == 2


@pytest.mark.parametrize(
    "msg",
    [
        {"type": "question.merge", "question": "q1"},
        {"type": "desk.focus", "question": 5},
    ],
)
async def test_desk_messages_are_checked(clients, show, msg):
    console = await clients.console(show)
    assert (await console.request(msg))["code"] == "invalid"


async def test_a_rejected_card_takes_no_one_in(clients, show):
    console = await clients.console(show)
    q1 = (await (await clients.audience(show)).request({"type": "ask", "text": "医院党建怎样让病人少跑腿？"}))[
        "question"
    ]
    assert (await console.request({"type": "question.reject", "question": q1}))["type"] == "ack"
    q2 = (await (await clients.audience(show)).request({"type": "ask", "text": "医院党建如何让病人少跑腿"}))["question"]
    f = await console.wait_for(lambda f: f["type"] == "question" and f["question"]["id"] == q2)
    assert f["question"]["cluster"] == q2
