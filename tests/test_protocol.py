"""The wire protocol against a real server: every message type, error code and role rule."""

import httpx
import pytest
from conftest import TOKEN, Client, host_cookies

from server.domain import DEFAULT_COLORS


async def start_round(console: Client, topic: str = "社会治理", duration_s: int = 300) -> None:
    reply = await console.request({"type": "round.start", "topic": topic, "duration_s": duration_s})
    assert reply["type"] == "ack", reply


# -- snapshots ----------------------------------------------------------------------


async def test_first_frame_is_a_snapshot_for_every_role(clients, show):
    for make in (clients.overlay, clients.audience, clients.console):
        c = await make(show)
        first = c.frames[0]
        assert first["type"] == "snapshot"
        assert first["role"] == c.role
        assert isinstance(first["seq"], int)
        s = first["show"]
        for key in ("slug", "title", "status", "sides", "round", "questions", "tally"):
            assert key in s, key
        assert s["slug"] == show
        assert set(s["tally"]) >= {"likes", "votes", "points", "viewers"}
        assert s["sides"]["a"]["guest"] == "王伟"
        assert ("you" in first) == (c.role == "audience")


async def test_snapshot_questions_depend_on_role(clients, show):
    console = await clients.console(show)
    asker = await clients.audience(show)
    pending = await asker.request({"type": "ask", "text": "还没审核的问题"})
    approved = await (await clients.audience(show)).request({"type": "ask", "text": "审核过的问题"})
    assert (await console.request({"type": "question.approve", "question": approved["question"]}))["type"] == "ack"

    overlay = await clients.overlay(show)
    assert [q["text"] for q in overlay.frames[0]["show"]["questions"]] == ["审核过的问题"]
    again = await clients.audience(show, cookie=None)
    assert [q["id"] for q in again.frames[0]["show"]["questions"]] == [approved["question"]]
    # the asker, reconnecting with the same device, also sees their own pending question
    cookie = asker.ws.request.headers["Cookie"].split("=", 1)[1]
    mine = await clients.audience(show, cookie=cookie)
    ids = {q["id"]: q for q in mine.frames[0]["show"]["questions"]}
    assert ids[pending["question"]]["mine"] is True and ids[pending["question"]]["status"] == "pending"
    late_console = await clients.console(show)
    statuses = {q["id"]: q["status"] for q in late_console.frames[0]["show"]["questions"]}
    assert statuses == {pending["question"]: "pending", approved["question"]: "approved"}


async def test_http_snapshot_matches_overlay(server, clients, show):
    overlay = await clients.overlay(show)
    r = httpx.get(f"{server.url}/api/shows/{show}")
    assert r.status_code == 200
    body = r.json()
    assert body["type"] == "snapshot" and body["show"]["slug"] == show
    assert body["show"]["sides"] == overlay.frames[0]["show"]["sides"]
    assert httpx.get(f"{server.url}/api/shows/nope").status_code == 404


# -- likes --------------------------------------------------------------------------


async def test_likes_are_counted_exactly_and_coalesced(clients, show):
    overlay = await clients.overlay(show)
    phone = await clients.audience(show)
    for _ in range(10):
        await phone.send({"type": "like", "side": "a", "count": 3})
    await phone.send({"type": "like", "side": "b", "count": 20})  # 50 taps: within a device's burst
    tally = await overlay.wait_for(lambda f: f["type"] == "tally" and f["likes"] == {"a": 30, "b": 20})
    assert tally["seq"] == overlay.frames[0]["seq"]  # tallies do not advance seq
    tallies = [f for f in overlay.frames if f["type"] == "tally"]
    assert len(tallies) < 11  # coalesced on the tick, not one per frame
    await phone.wait_for(lambda f: f["type"] == "tally" and f["likes"] == {"a": 30, "b": 20})


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "like", "side": "c", "count": 1},
        {"type": "like", "side": "a", "count": 0},
        {"type": "like", "side": "a", "count": 51},
        {"type": "like", "side": "a", "count": "5"},
        {"type": "like", "side": "a", "count": True},
        {"type": "like", "side": "a"},
    ],
)
async def test_bad_likes_are_invalid_and_change_nothing(clients, show, bad):
    phone = await clients.audience(show)
    reply = await phone.request(bad)
    assert reply == {"type": "error", "id": reply["id"], "code": "invalid", "message": reply["message"]}
    ok = await phone.request({"type": "like", "side": "b", "count": 1})
    assert ok["type"] == "ack"  # the socket is still open and usable
    overlay = await clients.overlay(show)
    t = await overlay.wait_for(
        lambda f: f["type"] == "tally" or (f["type"] == "snapshot" and f["show"]["tally"]["likes"]["b"] == 1)
    )
    likes = t["likes"] if t["type"] == "tally" else t["show"]["tally"]["likes"]
    assert likes == {"a": 0, "b": 1}


# -- votes --------------------------------------------------------------------------


async def test_votes_one_per_device_per_round_and_changeable(clients, show):
    console = await clients.console(show)
    phone = await clients.audience(show)
    assert (await phone.request({"type": "vote", "side": "a"}))["code"] == "conflict"  # no round yet
    await start_round(console)
    await phone.wait_type("round")
    assert (await phone.request({"type": "vote", "side": "a"}))["type"] == "ack"
    assert (await phone.request({"type": "vote", "side": "a"}))["type"] == "ack"  # same again: still one
    other = await clients.audience(show)
    assert (await other.request({"type": "vote", "side": "a"}))["type"] == "ack"
    await console.wait_for(lambda f: f["type"] == "tally" and f["votes"] == {"a": 2, "b": 0})
    assert (await phone.request({"type": "vote", "side": "b"}))["type"] == "ack"  # moved
    await console.wait_for(lambda f: f["type"] == "tally" and f["votes"] == {"a": 1, "b": 1})
    # the device's vote is in its next snapshot
    cookie = phone.ws.request.headers["Cookie"].split("=", 1)[1]
    again = await clients.audience(show, cookie=cookie)
    assert again.frames[0]["you"]["vote"] == "b"
    assert (await phone.request({"type": "vote", "side": "x"}))["code"] == "invalid"


async def test_round_end_records_votes_winner_and_locks_voting(clients, show):
    console = await clients.console(show)
    overlay = await clients.overlay(show)
    await start_round(console, "服务群众", 60)
    phones = [await clients.audience(show) for _ in range(3)]
    for phone, side in zip(phones, "bba"):
        assert (await phone.request({"type": "vote", "side": side}))["type"] == "ack"
    assert (await console.request({"type": "round.end"}))["type"] == "ack"
    frame = await overlay.wait_for(lambda f: f["type"] == "round" and f["round"]["status"] == "finished")
    assert frame["rounds"][-1]["votes"] == {"a": 1, "b": 2}
    assert frame["rounds"][-1]["winner"] == "b"
    assert frame["rounds_won"] == {"a": 0, "b": 1}
    assert (await phones[0].request({"type": "vote", "side": "a"}))["code"] == "conflict"
    # a new round starts with zero votes
    await start_round(console, "基层民主", 60)
    await overlay.wait_for(lambda f: f["type"] == "round" and f["round"]["index"] == 2)
    assert (await phones[0].request({"type": "vote", "side": "a"}))["type"] == "ack"
    await overlay.wait_for(lambda f: f["type"] == "tally" and f["votes"] == {"a": 1, "b": 0})


# -- rounds -------------------------------------------------------------------------


async def test_round_state_machine_and_server_clock(clients, show):
    console = await clients.console(show)
    overlay = await clients.overlay(show)
    for action in ("round.pause", "round.resume", "round.end"):
        assert (await console.request({"type": action}))["code"] == "conflict"
    assert (await console.request({"type": "round.start", "topic": "x", "duration_s": 5}))["code"] == "invalid"
    assert (await console.request({"type": "round.start", "topic": "", "duration_s": 60}))["code"] == "invalid"
    assert (await console.request({"type": "round.start", "topic": "长" * 121, "duration_s": 60}))[
        "code"
    ] == "too_large"
    await start_round(console, "富民强村", 120)
    running = await overlay.wait_for(lambda f: f["type"] == "round" and f["round"]["status"] == "running")
    assert running["round"]["index"] == 1 and running["round"]["topic"] == "富民强村"
    assert 119_000 <= running["round"]["remaining_ms"] <= 120_000
    assert "started_at" not in running["round"]
    assert (await console.request({"type": "round.start", "topic": "again", "duration_s": 60}))["code"] == "conflict"
    assert (await console.request({"type": "round.pause"}))["type"] == "ack"
    paused = await overlay.wait_for(lambda f: f["type"] == "round" and f["round"]["status"] == "paused")
    assert (await console.request({"type": "round.pause"}))["code"] == "conflict"
    # while paused, the clock stands still: a late snapshot shows the same remaining time
    late = await clients.overlay(show)
    assert late.frames[0]["show"]["round"]["remaining_ms"] == paused["round"]["remaining_ms"]
    assert (await console.request({"type": "round.resume"}))["type"] == "ack"
    await overlay.wait_for(
        lambda f: f["type"] == "round" and f["round"]["status"] == "running" and f["seq"] > paused["seq"]
    )
    assert (await console.request({"type": "round.end"}))["type"] == "ack"
    ended = await overlay.wait_for(lambda f: f["type"] == "round" and f["round"]["status"] == "finished")
    assert ended["round"]["remaining_ms"] <= paused["round"]["remaining_ms"]


# -- questions ----------------------------------------------------------------------


async def test_ask_moderate_feature_flow(clients, show):
    console = await clients.console(show)
    overlay = await clients.overlay(show)
    asker = await clients.audience(show)
    bystander = await clients.audience(show)
    reply = await asker.request({"type": "ask", "text": "  书记，怎样让  群众少跑腿？ ", "name": "李女士"})
    assert reply["type"] == "ack" and reply["question"].startswith("q")
    qid = reply["question"]
    in_console = await console.wait_for(lambda f: f["type"] == "question" and f["question"]["id"] == qid)
    assert in_console["question"]["status"] == "pending"
    assert in_console["question"]["text"] == "书记，怎样让 群众少跑腿？"  # normalised
    mine = await asker.wait_for(lambda f: f["type"] == "mine" and f["question"]["id"] == qid)
    assert mine["question"]["mine"] is True and "seq" not in mine  # the asker's own, outside the stream
    assert not any(f["type"] == "question" and f["question"]["id"] == qid for f in asker.frames)
    overlay_seq = overlay.frames[0]["seq"]

    assert (await console.request({"type": "question.unfeature", "question": qid}))["code"] == "conflict"
    assert (await console.request({"type": "question.approve", "question": qid}))["type"] == "ack"
    # overlays and other phones never heard of the pending question: the approval is
    # the first they see of it, as the next number of their public sequence
    for c in (overlay, bystander):
        f = await c.wait_for(lambda f: f["type"] == "question" and f["question"]["id"] == qid)
        assert f["question"]["status"] == "approved" and f["seq"] == c.frames[0]["seq"] + 1
    assert overlay.frames[0]["seq"] == overlay_seq
    f = await overlay.wait_for(lambda f: f["type"] == "question" and f["question"].get("status") == "approved")
    assert f["question"]["text"] == "书记，怎样让 群众少跑腿？" and f["question"]["name"] == "李女士"
    assert (await console.request({"type": "question.feature", "question": qid}))["type"] == "ack"
    await overlay.wait_for(lambda f: f["type"] == "show" and f["show"].get("featured") == qid)

    other = (await bystander.request({"type": "ask", "text": "第二个问题"}))["question"]
    assert (await console.request({"type": "question.feature", "question": other}))["type"] == "ack"
    await overlay.wait_for(lambda f: f["type"] == "show" and f["show"].get("featured") == other)
    # only one featured at a time: the first went back to approved
    snap = (await clients.console(show)).frames[0]["show"]
    statuses = {q["id"]: q["status"] for q in snap["questions"]}
    assert statuses == {qid: "approved", other: "featured"} and snap["featured"] == other

    assert (await console.request({"type": "question.answered", "question": other}))["type"] == "ack"
    await overlay.wait_for(lambda f: f["type"] == "show" and "featured" in f["show"] and f["show"]["featured"] is None)
    assert (await console.request({"type": "question.reject", "question": qid}))["type"] == "ack"
    gone = await overlay.wait_for(
        lambda f: f["type"] == "question" and f["question"]["id"] == qid and f["question"]["status"] == "rejected"
    )
    assert "text" not in gone["question"]
    assert (await console.request({"type": "question.approve", "question": "q9999"}))["code"] == "not_found"


async def test_ask_limits(clients, show):
    phone = await clients.audience(show)
    assert (await phone.request({"type": "ask", "text": "   "}))["code"] == "invalid"
    assert (await phone.request({"type": "ask", "text": "问" * 281}))["code"] == "too_large"
    assert (await phone.request({"type": "ask", "text": "ok", "name": "名" * 41}))["code"] == "too_large"
    assert (await phone.request({"type": "ask", "text": 5}))["code"] == "invalid"
    assert (await phone.request({"type": "ask", "text": "问" * 280}))["type"] == "ack"
    limited = await phone.request({"type": "ask", "text": "again"})
    assert limited["code"] == "rate_limited" and 0 < limited["retry_ms"] <= 10_000


async def test_upvotes_once_per_device_on_public_questions(clients, show):
    console = await clients.console(show)
    asker = await clients.audience(show)
    qid = (await asker.request({"type": "ask", "text": "值得点赞的问题"}))["question"]
    voter = await clients.audience(show)
    assert (await voter.request({"type": "upvote", "question": qid}))["code"] == "not_found"  # pending
    await console.request({"type": "question.approve", "question": qid})
    await voter.wait_for(lambda f: f["type"] == "question" and f["question"]["status"] == "approved")
    assert (await voter.request({"type": "upvote", "question": qid}))["type"] == "ack"
    assert (await voter.request({"type": "upvote", "question": qid}))["code"] == "conflict"
    assert (await asker.request({"type": "upvote", "question": qid}))["code"] == "conflict"  # not one's own
    third = await clients.audience(show)
    assert (await third.request({"type": "upvote", "question": qid}))["type"] == "ack"
    f = await console.wait_for(lambda f: f["type"] == "question" and f["question"]["upvotes"] == 2)
    assert f["question"]["id"] == qid
    cookie = voter.ws.request.headers["Cookie"].split("=", 1)[1]
    assert (await clients.audience(show, cookie=cookie)).frames[0]["you"]["upvoted"] == [qid]


# -- points --------------------------------------------------------------------------


async def test_points(clients, show):
    console = await clients.console(show)
    overlay = await clients.overlay(show)
    assert (await console.request({"type": "points.set", "side": "a", "points": 3}))["type"] == "ack"
    f = await overlay.wait_type("points")
    assert f["points"] == {"a": 3, "b": 0}
    await overlay.wait_for(lambda f: f["type"] == "tally" and f["points"] == {"a": 3, "b": 0})
    for bad in (
        {"side": "a", "points": -1},
        {"side": "a", "points": 10000},
        {"side": "c", "points": 1},
        {"side": "a", "points": 1.5},
        {"side": "a"},
    ):
        assert (await console.request({"type": "points.set", **bad}))["code"] == "invalid"


# -- roles, sequence, bad input -------------------------------------------------------------


@pytest.mark.parametrize(
    "msg",
    [
        {"type": "round.start", "topic": "x", "duration_s": 60},
        {"type": "question.approve", "question": "q1"},
        {"type": "points.set", "side": "a", "points": 9},
        {"type": "overlay.reload"},
    ],
)
async def test_audience_cannot_act_as_host(clients, show, msg):
    phone = await clients.audience(show)
    assert (await phone.request(msg))["code"] == "forbidden"


async def test_overlay_accepts_no_messages_and_console_no_audience_ones(clients, show):
    overlay = await clients.overlay(show)
    for msg in ({"type": "like", "side": "a", "count": 1}, {"type": "round.end"}):
        assert (await overlay.request(msg))["code"] == "forbidden"
    console = await clients.console(show)
    assert (await console.request({"type": "vote", "side": "a"}))["code"] == "forbidden"


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1,2]",
        '"str"',
        "{}",
        '{"type": "dance"}',
        '{"type": 5}',
        '{"type": "like", "side": "a", "count": 1, "id": 7}',
    ],
)
async def test_malformed_frames_get_invalid(clients, show, raw):
    phone = await clients.audience(show)
    before = len(phone.frames)
    await phone.send(raw)
    err = await phone.wait_type("error", start=before)
    assert err["code"] == "invalid"
    assert (await phone.request({"type": "like", "side": "a", "count": 1}))["type"] == "ack"


async def test_binary_frame_is_invalid_and_oversize_closes_1009(clients, show):
    phone = await clients.audience(show)
    await phone.send(b"\x00\x01binary")
    assert (await phone.wait_type("error"))["code"] == "invalid"
    await phone.send('{"type": "ask", "text": "' + "x" * 5000 + '"}')
    assert await phone.closed() == 1009


async def test_every_socket_gets_every_seq_once(clients, show):
    """Consoles count every change (`seq`); phones and overlays count the changes
    they may see (their own public sequence), each without a gap."""
    console = await clients.console(show)
    overlay = await clients.overlay(show)
    phone = await clients.audience(show)
    other = await clients.audience(show)
    await start_round(console)
    await console.request({"type": "points.set", "side": "b", "points": 2})
    qid = (await phone.request({"type": "ask", "text": "序号测试"}))["question"]  # private: consoles only
    hidden = (await other.request({"type": "ask", "text": "不会公开的问题"}))["question"]
    await console.request({"type": "question.reject", "question": hidden})  # private too
    await console.request({"type": "question.feature", "question": qid})  # public
    await console.request({"type": "round.pause"})
    last = {}
    for c in (overlay, phone, other, console):
        last[c.role] = await c.wait_for(lambda f: f["type"] == "round" and f["round"]["status"] == "paused")
        start = c.frames[0]["seq"]
        seqs = [f["seq"] for f in c.frames[1:] if f["type"] not in ("tally", "ack", "error") and "seq" in f]
        assert seqs == list(range(start + 1, start + len(seqs) + 1)), (c.role, seqs)
        assert seqs[-1] == last[c.role]["seq"]
        tally_seqs = [f["seq"] for f in c.frames if f["type"] == "tally"]
        assert tally_seqs == sorted(tally_seqs) and all(t <= seqs[-1] for t in tally_seqs)
    console_n = len([f for f in console.frames[1:] if f["type"] not in ("tally", "ack", "error")])
    overlay_n = len([f for f in overlay.frames[1:] if f["type"] not in ("tally", "ack", "error")])
    assert console_n == overlay_n + 3  # the two pending questions and the rejection
    assert not any(f["type"] == "question" and f["question"]["id"] == hidden for f in overlay.frames)


# -- admission -------------------------------------------------------------------------------


async def test_close_codes_on_admission(server, show):
    async def code(role, slug, cookie="", origin=None):
        c = await Client.connect(server.ws_url, role, slug, cookie, origin=origin)
        return await c.closed()

    assert await code("overlay", "no-such-show") == 4404
    assert await code("audience", show) == 4401
    assert await code("audience", show, "lt_device=forged.signature") == 4401
    assert await code("console", show) == 4401
    assert await code("console", show, "lt_session=host.forged") == 4401
    assert await code("overlay", show, origin="https://evil.example") == 4403
    assert await code("overlay", show, origin="null") == 4403
    ok = await Client.connect(server.ws_url, "overlay", show, origin=server.url)
    assert (await ok.snapshot())["type"] == "snapshot"
    await ok.close()


async def test_login_logout_and_console_redirect(server, show):
    with httpx.Client(base_url=server.url) as http:
        r = http.get(f"/console/{show}", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/login?next=/console/{show}"
        r = http.post("/login", data={"token": "wrong", "next": f"/console/{show}"}, follow_redirects=False)
        assert r.status_code == 303 and "error=1" in r.headers["location"] and "lt_session" not in r.cookies
        r = http.post("/login", data={"token": TOKEN, "next": f"/console/{show}"}, follow_redirects=False)
        assert r.headers["location"] == f"/console/{show}"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert http.get(f"/console/{show}", follow_redirects=False).status_code == 200
        r = http.post("/login", data={"token": TOKEN, "next": "//evil.example/x"}, follow_redirects=False)
        assert r.headers["location"] == "/shows"
        assert http.post("/login", data={"token": TOKEN}, headers={"Origin": "https://evil.example"}).status_code == 403
        r = http.post("/logout", follow_redirects=False)
        assert r.status_code == 303
        http.cookies.clear()
        assert http.get(f"/console/{show}", follow_redirects=False).status_code == 303


async def test_create_show_api(server):
    body = {"slug": "api-made", "title": "第17期", "sides": {"a": {"name": "甲"}, "b": {"name": "乙"}}}
    assert httpx.post(f"{server.url}/api/shows", json=body).status_code == 401
    cookies = host_cookies(server.url)
    with httpx.Client(base_url=server.url, cookies=cookies) as http:
        assert http.post("/api/shows", json=body).status_code == 201
        assert http.post("/api/shows", json=body).status_code == 409
        for bad in (
            {**body, "slug": "Bad Slug"},
            {**body, "slug": "x2", "sides": {"a": {}}},
            {**body, "slug": "x3", "sides": {"a": {"color": "red"}, "b": {}}},
        ):
            r = http.post("/api/shows", json=bad)
            assert r.status_code == 400 and r.json()["error"] == "invalid"
        assert http.post("/api/shows", content=b"{nope").status_code == 400
    snap = httpx.get(f"{server.url}/api/shows/api-made", cookies=cookies).json()  # a draft: hosts only
    assert snap["show"]["title"] == "第17期" and snap["show"]["sides"]["a"]["color"] == DEFAULT_COLORS["a"]
