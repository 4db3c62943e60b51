"""Four hours on air (issue 12): bounded snapshots, bounded memory, ended shows
unloaded, the snapshot always the first frame."""

import asyncio
import time

import orjson
import pytest
from conftest import Client, Clients, create_show, device_cookie, host_cookies, wait_until

from server.domain import show as dshow
from server.domain.questions import ANSWERED, APPROVED, FEATURED, PENDING, REJECTED, Question
from server.settings import Settings
from server.store.embedded import EmbeddedStore

SNAPSHOT_MAX = 64 * 1024


async def seed_questions(data_dir: str, slug: str, n_public: int, every: int = 27) -> dict[str, str]:
    """Write questions straight into a stopped server's embedded store: `n_public` public
    ones (every tenth answered, one featured) and, among them, a pending and a rejected one
    every `every`. Returns id -> status. (In a process of its own: the store locks its
    DATA_DIR for the life of the process.)"""
    import json
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    code = (
        "import asyncio, json, sys; from test_soak import _seed; "
        f"print(json.dumps(asyncio.run(_seed({data_dir!r}, {slug!r}, {n_public}, {every}))))"
    )
    env = {**__import__("os").environ, "PYTHONPATH": f"{here}:{here.parent}"}
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", code], cwd=here, env=env, capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


async def _seed(data_dir: str, slug: str, n_public: int, every: int) -> dict[str, str]:
    store = EmbeddedStore(Settings(data_dir=data_dir))
    await store.start()
    statuses: dict[str, str] = {}
    try:
        now = int(time.time() * 1000)
        events = []
        public = i = 0
        while public < n_public:
            i += 1
            qid = await store.next_question_id(slug)
            if i % every == 0:
                status = PENDING
            elif i % every == 1:
                status = REJECTED
            else:
                public += 1
                status = ANSWERED if public % 10 == 0 else APPROVED
            if public == 7 and status == APPROVED and FEATURED not in statuses.values():
                status = FEATURED
            # a typical question: some forty characters of Chinese and a name
            text = f"第{i}个问题：请问两位嘉宾如何看待城市更新中的老旧小区改造与居民意愿？"
            q = Question(qid, text, f"观众{i}", status, now + i, f"dev{i % 500:09d}", upvotes=i % 7)
            event = {"type": "question", "question": q.record()}
            events.append(dshow.private(event) if status in (PENDING,) else event)
            if status == FEATURED:
                events.append({"type": "show", "show": {"featured": qid}})
            statuses[qid] = status
        for start in range(0, len(events), 200):
            await store.commit(slug, events[start : start + 200])
    finally:
        await store.close()
    return statuses


async def page_all(client: Client, cursor: str | None) -> list[dict]:
    """Follow `questions.page` from a cursor to the end."""
    got: list[dict] = []
    while cursor is not None:
        reply = await client.request({"type": "questions.page", "before": cursor})
        assert reply["type"] == "ack", reply
        got += reply["questions"]
        cursor = reply["older"]
    return got


async def test_a_snapshot_after_1000_public_questions_is_bounded_and_pages_return_each_once(fresh_server):
    srv = fresh_server(QUESTION_INTERVAL_S="0.05", PAGE_BURST="100", CONSOLE_QUEUE_MAX="100")
    slug = create_show(srv.url)
    clients = Clients(srv)
    cookie = device_cookie(srv.url, slug)
    try:
        # the phone's own questions are the oldest of the show; one of them is approved later
        phone = await clients.audience(slug, cookie)
        own = []
        for k in range(3):
            reply = await phone.request({"type": "ask", "text": f"我自己的问题{k}"})
            while reply.get("code") == "rate_limited":  # as the page does: wait as told, then again
                await asyncio.sleep(reply["retry_ms"] / 1000)
                reply = await phone.request({"type": "ask", "text": f"我自己的问题{k}"})
            assert reply["type"] == "ack", reply
            own.append(reply["question"])
        console = await clients.console(slug)
        assert (await console.request({"type": "question.approve", "question": own[0]}))["type"] == "ack"
        await clients.close()
        srv.stop()
        statuses = await seed_questions(srv.data_dir, slug, 1000)
        statuses.update({own[0]: APPROVED, own[1]: PENDING, own[2]: PENDING})
        srv.start()
        clients = Clients(srv)

        phone = await Client.connect(srv.ws_url, "audience", slug, f"lt_device={cookie}")
        clients.made.append(phone)
        snap = await phone.wait_for(lambda f: True, 10)  # the first frame
        raw = orjson.dumps(snap)  # the server's bytes (orjson both ways: the same compact form)
        assert snap["type"] == "snapshot"
        assert len(raw) < SNAPSHOT_MAX, len(raw)
        print(f"a phone's snapshot after 1,000 public questions: {len(raw)} bytes")
        show = snap["show"]
        public = [qid for qid, status in statuses.items() if status in (APPROVED, FEATURED, ANSWERED)]
        assert len(public) == 1001  # the seeded thousand and the phone's approved one
        featured = next(qid for qid, status in statuses.items() if status == FEATURED)
        ids = [q["id"] for q in show["questions"]]
        assert show["featured"] == featured and featured in ids  # old, but on air
        assert set(own) <= set(ids)  # its own, old as they are; the pending ones marked
        mine = {q["id"] for q in show["questions"] if q.get("mine")}
        assert mine == {own[1], own[2]}
        newest = sorted(public, key=lambda q: int(q[1:]))[-50:]
        assert set(newest) <= set(ids) and len(ids) <= 50 + 1 + 3
        assert show["questions_older"] is not None
        await phone.send({"type": "hello"})

        # every public question exactly once: the snapshot's page, then the older pages
        paged = await page_all(phone, show["questions_older"])
        page_ids = [q["id"] for q in paged]
        assert len(page_ids) == len(set(page_ids))
        seen = [q["id"] for q in show["questions"] if statuses[q["id"]] != PENDING]
        assert set(seen).isdisjoint(set(page_ids) - {featured, own[0]})
        assert sorted(set(newest) | set(page_ids), key=lambda q: int(q[1:])) == sorted(public, key=lambda q: int(q[1:]))
        assert all(statuses[qid] in (APPROVED, FEATURED, ANSWERED) for qid in page_ids)  # never a pending one
        assert all("device" not in q for q in paged)
        created = [q["created"] for q in paged]
        assert created == sorted(created, reverse=True)  # newest first

        # a console: its queue (capped by CONSOLE_QUEUE_MAX) and a page of answered/rejected
        console = await Client.connect(srv.ws_url, "console", slug, f"lt_session={host_cookies(srv.url)['lt_session']}")
        clients.made.append(console)
        csnap = await console.wait_for(lambda f: True, 10)
        raw = orjson.dumps(csnap)
        assert csnap["type"] == "snapshot"
        cq = csnap["show"]["questions"]
        queue = [q for q in cq if q["status"] in (PENDING, APPROVED, FEATURED)]
        done = [q for q in cq if q["status"] in (ANSWERED, REJECTED)]
        assert len(queue) == 100 and len(done) == 50, (len(queue), len(done))
        assert len(raw) < 2 * SNAPSHOT_MAX, len(raw)
        print(f"a console's snapshot (queue capped at 100): {len(raw)} bytes")
        await console.send({"type": "hello"})
        older = await page_all(console, csnap["show"]["questions_older"])
        every_done = {qid for qid, status in statuses.items() if status in (ANSWERED, REJECTED)}
        older_ids = [q["id"] for q in older]
        assert len(older_ids) == len(set(older_ids))
        assert {q["id"] for q in done} | set(older_ids) == every_done
        assert all("device" in q for q in older)  # console views

        # a cursor that is no question
        reply = await phone.request({"type": "questions.page", "before": "q999999"})
        assert reply["type"] == "error" and reply["code"] == "not_found"
        reply = await phone.request({"type": "questions.page", "before": 7})
        assert reply["type"] == "error" and reply["code"] == "invalid"
    finally:
        await clients.close()


@pytest.mark.parametrize("n", [0, 1, 49, 50, 51, 120])
def test_pages_cover_every_public_question_once_whatever_the_count(n):
    """The domain's paging, at the edges of a page."""
    state = dshow.ShowState("s")
    for i in range(1, n + 1):
        status = PENDING if i % 5 == 0 else APPROVED
        state.apply({"type": "question", "question": Question(f"q{i}", "t", "", status, 1000 + i // 3, "d").record()})
    public = {q.id for q in state.questions.values() if q.public}
    first, cursor = dshow.snapshot_questions(state, "overlay", "", 50, 1000)
    got = [q["id"] for q in first]
    while cursor is not None:
        page, cursor = dshow.older_page(state, False, cursor, 50)
        got += [q.id for q in page]
    assert len(got) == len(set(got)) and set(got) == public


@pytest.mark.browser
async def test_the_phone_page_loads_older_questions_with_more(fresh_server, browser, shots_dir):
    srv = fresh_server()
    slug = create_show(srv.url)
    srv.stop()
    statuses = await seed_questions(srv.data_dir, slug, 120)
    srv.start()
    public = [qid for qid, status in statuses.items() if status in (APPROVED, FEATURED, ANSWERED)]
    ctx = await browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    phone = await ctx.new_page()
    errors: list[str] = []
    phone.on("pageerror", lambda e: errors.append(str(e)))
    await phone.goto(f"{srv.url}/s/{slug}")
    items = phone.locator("#questions > li")
    more = phone.locator(".more-questions")
    await wait_until(lambda: items.count(), timeout=20)
    assert await items.count() == 51  # the newest fifty and the featured one, older
    assert await more.is_visible()
    await more.click()
    await wait_until(lambda: _count_is(items, 101), timeout=10)  # fifty more
    await more.scroll_into_view_if_needed()
    await phone.screenshot(path=str(shots_dir / "audience-older-questions.png"))
    await more.click()
    await wait_until(lambda: _count_is(items, len(public)), timeout=10)
    await wait_until(lambda: _hidden(more), timeout=5)  # nothing older: no button
    shown = set(await items.evaluate_all("(els) => els.map((e) => e.dataset.id)"))
    assert shown == set(public)
    assert not errors, errors
    await ctx.close()


async def _count_is(locator, n: int) -> bool:
    return await locator.count() == n


async def _hidden(locator) -> bool:
    return not await locator.is_visible()


# -- the first frame is the snapshot ------------------------------------------------------


@pytest.mark.redis
async def test_every_sockets_first_frame_is_its_snapshot_with_two_processes_under_load(fresh_server, redis_server):
    """Two processes on one Redis, likes flowing and tallies fanning out every tick on
    both: 300 sockets open at once (phones, and overlays on the show's key), half on each;
    every one's first frame is its snapshot."""
    import httpx
    import websockets

    env = {
        "REDIS_URL": redis_server.url,
        "REDIS_PREFIX": f"first{time.monotonic_ns()}",
        "VENUE_NETWORKS": "127.0.0.0/8",  # devices come with the page
        "LIKE_BURST": "100000",
        "LIKE_RATE": "100000",
        "PHONE_TICK_MS": "100",  # every phone hears a tally every tick: the most chances to go first
    }
    a, b = fresh_server(**env), fresh_server(**env)
    slug = create_show(a.url)
    on_a, on_b = Clients(a), Clients(b)
    stop = asyncio.Event()

    async def tap(phone: Client) -> None:
        while not stop.is_set():
            await phone.send({"type": "like", "side": "a", "count": 1})
            await asyncio.sleep(0.01)

    def cookies(srv, n: int) -> list[str]:
        out = []
        with httpx.Client(base_url=srv.url) as http:
            for _ in range(n):
                http.cookies.clear()  # a new phone each time
                out.append(http.get(f"/s/{slug}").cookies["lt_device"])
        return out

    key = (
        await asyncio.to_thread(lambda: httpx.get(f"{a.url}/api/shows/{slug}/overlay-url", cookies=host_cookies(a.url)))
    ).json()["key"]

    async def first_frame(srv, role: str, cookie: str) -> str:
        url = f"{srv.ws_url}/ws/{role}/{slug}" + (f"?key={key}" if role == "overlay" else "")
        headers = {"Cookie": f"lt_device={cookie}"} if cookie else {}
        async with websockets.connect(url, additional_headers=headers, compression=None, max_size=2**22) as ws:
            try:
                first = orjson.loads(await asyncio.wait_for(ws.recv(), 20))
            except websockets.ConnectionClosed:
                return f"closed {ws.close_code}"
            return str(first["type"])

    try:
        tappers = [await on.audience(slug) for on in (on_a, on_b) for _ in range(10)]
        watchers = [await on.overlay(slug) for on in (on_a, on_b)]
        taps = [asyncio.create_task(tap(p)) for p in tappers]
        await watchers[1].wait_for(lambda f: f["type"] == "tally" and f["likes"]["a"] > 100, timeout=10)
        jar = await asyncio.to_thread(cookies, a, 280)
        assert len(set(jar)) == 280
        opens = [first_frame(a if i % 2 else b, "audience", c) for i, c in enumerate(jar)]
        opens += [first_frame(a if i % 2 else b, "overlay", "") for i in range(20)]
        firsts = await asyncio.gather(*opens)
        stop.set()
        await asyncio.gather(*taps)
        late = [f for f in firsts if f != "snapshot"]
        assert len(firsts) == 300 and not late, f"{len(late)} of 300 began with {set(late)}"
    finally:
        stop.set()
        await on_a.close()
        await on_b.close()


# -- what a connect storm leaves behind in Redis ------------------------------------------


@pytest.mark.redis
async def test_a_connect_burst_keeps_within_the_redis_pool_and_it_shrinks_back(fresh_server, own_redis):
    """150 phones at once: the process opens at most REDIS_MAX_CONNECTIONS per client to
    Redis (commands wait for a free one), every phone gets its snapshot, and the idle
    connections are closed again after REDIS_POOL_IDLE_S."""
    import httpx
    import redis
    import websockets

    rds = own_redis()
    srv = fresh_server(
        REDIS_URL=rds.url, VENUE_NETWORKS="127.0.0.0/8", REDIS_MAX_CONNECTIONS="8", REDIS_POOL_IDLE_S="2"
    )
    slug = create_show(srv.url)
    r = redis.Redis(port=rds.port)

    def cookies(n: int) -> list[str]:
        out = []
        with httpx.Client(base_url=srv.url) as http:
            for _ in range(n):
                http.cookies.clear()
                out.append(http.get(f"/s/{slug}").cookies["lt_device"])
        return out

    async def first(cookie: str) -> str:
        async with websockets.connect(
            f"{srv.ws_url}/ws/audience/{slug}", additional_headers={"Cookie": f"lt_device={cookie}"}, compression=None
        ) as ws:
            try:
                return str(orjson.loads(await asyncio.wait_for(ws.recv(), 20))["type"])
            except websockets.ConnectionClosed:
                return f"closed {ws.close_code}"

    jar = await asyncio.to_thread(cookies, 150)
    before = r.info("stats")["total_connections_received"]
    got = await asyncio.gather(*(first(c) for c in jar))
    opened = r.info("stats")["total_connections_received"] - before
    assert got == ["snapshot"] * 150, {g for g in got if g != "snapshot"}
    assert opened <= 2 * 8, opened  # the show's store and the season's store, 8 each at most
    # the pool shrinks back: only the event subscription (and this test's client) stay
    await wait_until(lambda: r.info("clients")["connected_clients"] <= 3, timeout=10)
    r.close()


# -- an ended show leaves the process -------------------------------------------------------


def gauge(base: str, name: str) -> int:
    import httpx

    text = httpx.get(f"{base}/metrics").text
    return int(float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name + " "))))


async def test_an_ended_show_without_sockets_is_unloaded_and_a_socket_coming_back_reloads_it(fresh_server):
    srv = fresh_server(SHOW_UNLOAD_S="1", VENUE_NETWORKS="127.0.0.0/8")
    slug = create_show(srv.url)
    clients = Clients(srv)
    try:
        console = await clients.console(slug)
        asker, fan = await clients.audience(slug), await clients.audience(slug)
        fan_cookie = fan.ws.request.headers["Cookie"].split("=", 1)[1]
        qid = (await asker.request({"type": "ask", "text": "结束以后还在吗？"}))["question"]
        assert (await console.request({"type": "question.approve", "question": qid}))["type"] == "ack"
        assert (await console.request({"type": "round.start", "topic": "最后一轮", "duration_s": 60}))["type"] == "ack"
        assert (await fan.request({"type": "upvote", "question": qid}))["type"] == "ack"
        assert (await fan.request({"type": "vote", "side": "b"}))["type"] == "ack"
        await fan.request({"type": "like", "side": "a", "count": 7})
        await console.wait_for(lambda f: f["type"] == "tally" and f["likes"]["a"] == 7, timeout=5)
        assert (await console.request({"type": "show.end"}))["type"] == "ack"
        replicas, records = gauge(srv.url, "leitai_shows_loaded"), gauge(srv.url, "leitai_store_shows_in_memory")
        await clients.close()
        # nobody left: after the grace period the process lets the show go
        await wait_until(lambda: any(f"show {slug} ended and has no sockets" in line for line in srv.log), timeout=15)
        assert gauge(srv.url, "leitai_shows_loaded") == replicas - 1  # no replica
        assert gauge(srv.url, "leitai_store_shows_in_memory") == records - 1  # its records on disk only

        # a socket coming back finds it as it was
        clients = Clients(srv)
        again = await clients.audience(slug, fan_cookie)
        snap = again.frames[0]
        assert snap["type"] == "snapshot"
        show = snap["show"]
        assert show["status"] == "ended"
        assert [(q["id"], q["upvotes"], q["status"]) for q in show["questions"]] == [(qid, 1, "approved")]
        assert show["tally"]["likes"] == {"a": 7, "b": 0}
        assert show["rounds"][-1]["votes"] == {"a": 0, "b": 1}
        assert snap["you"]["upvoted"] == [qid]  # this device's own record, read back
        assert gauge(srv.url, "leitai_shows_loaded") == replicas
        assert gauge(srv.url, "leitai_store_shows_in_memory") == records
        reply = await again.request({"type": "upvote", "question": qid})
        assert reply["type"] == "error" and reply["code"] == "ended"
        console = await clients.console(slug)
        assert (await console.request({"type": "points.set", "side": "a", "points": 2}))["type"] == "ack"
        assert (await again.wait_type("points"))["points"] == {"a": 2, "b": 0}
        await clients.close()

        # after a restart an ended show stays on disk until a socket asks for it
        srv.stop()
        srv.start()
        assert gauge(srv.url, "leitai_store_shows_in_memory") == records - 1
        clients = Clients(srv)
        back = await clients.audience(slug, fan_cookie)
        assert back.frames[0]["show"]["tally"]["points"] == {"a": 2, "b": 0}
        assert gauge(srv.url, "leitai_store_shows_in_memory") == records
    finally:
        await clients.close()


# -- remembered replies: compact, within a byte budget ------------------------------------


async def test_remembered_replies_are_compact_and_kept_within_their_byte_budget():
    import tracemalloc

    from server.store.replies import MemoryReplies

    def ack(i: int) -> bytes:  # as the server makes them: orjson, ~60 bytes in a 4 KiB allocation
        return orjson.dumps({"type": "ack", "id": f"m{i}-a1b2c3", "side": "a", "counted": True})

    roomy = MemoryReplies(max_bytes=10 * 2**20, ttl_s=3600)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2000):
            key = (f"dev{i:06d}", f"m{i}")
            assert await roomy.begin(key) is None
            await roomy.finish(key, ack(i))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(roomy) == 2000
    assert held < 2000 * 600, f"{held / 2000:.0f} bytes per remembered reply"
    assert abs(roomy.bytes - held) < 0.25 * held, (roomy.bytes, held)  # the budget counts what is held
    assert await roomy.begin(("dev000007", "m7")) == ack(7)  # still answered with the first reply

    tight = MemoryReplies(max_bytes=50_000, ttl_s=3600)
    for i in range(2000):
        key = (f"dev{i:06d}", f"m{i}")
        await tight.begin(key)
        await tight.finish(key, ack(i))
    assert tight.bytes <= 50_000 and 0 < len(tight) < 2000
    assert await tight.begin(("dev001999", "m1999")) == ack(1999)  # the newest kept, the oldest out first
    assert await tight.begin(("dev000000", "m0")) is None


async def test_remembered_replies_leave_memory_when_they_expire_not_when_the_budget_is_full():
    """A show's replies reach their steady size within `REPLY_TTL_S`: a four-hour show at
    six replies a second does not fill the budget and stay there."""
    from server.store.replies import MemoryReplies

    now = [0.0]
    replies = MemoryReplies(max_bytes=10 * 2**20, ttl_s=600, clock=lambda: now[0])
    for i in range(600):  # one a second for ten minutes
        now[0] = float(i)
        key = (f"dev{i:06d}", f"m{i}")
        assert await replies.begin(key) is None
        await replies.finish(key, b'{"type":"ack","id":"m%d"}' % i)
    assert len(replies) == 600
    assert await replies.begin(("dev000000", "m0")) is not None  # 599 s old: still answered
    for i in range(600, 1800):  # twenty minutes more: the oldest leave as the new come
        now[0] = float(i)
        key = (f"dev{i:06d}", f"m{i}")
        await replies.begin(key)
        await replies.finish(key, b'{"type":"ack","id":"m%d"}' % i)
    assert len(replies) == 600, len(replies)  # what ten minutes bring, not twenty
    assert replies.bytes < 600 * 500
    assert await replies.begin(("dev001199", "m1199")) is None  # made 600 s ago: forgotten


# -- what an ended show leaves in Redis ----------------------------------------------------


@pytest.mark.redis
async def test_an_ended_shows_redis_keys_expire_after_the_retention_and_not_before_its_end(fresh_server, own_redis):
    import redis

    rds = own_redis()
    prefix = f"ret{time.monotonic_ns()}"
    env = {"REDIS_URL": rds.url, "REDIS_PREFIX": prefix, "SHOW_UNLOAD_S": "1", "ENDED_RETENTION_S": "3600"}
    srv = fresh_server(VENUE_NETWORKS="127.0.0.0/8", **env)
    slug = create_show(srv.url)
    r = redis.Redis(port=rds.port)

    def ttls() -> dict[str, int]:
        return {k.decode(): r.ttl(k) for k in r.scan_iter(match=f"{prefix}:{{{slug}}}:*")}

    clients = Clients(srv)
    try:
        console = await clients.console(slug)
        phone = await clients.audience(slug)
        qid = (await phone.request({"type": "ask", "text": "键会过期吗？"}))["question"]
        assert (await console.request({"type": "question.approve", "question": qid}))["type"] == "ack"
        assert (await console.request({"type": "round.start", "topic": "一轮", "duration_s": 60}))["type"] == "ack"
        assert (await phone.request({"type": "vote", "side": "a"}))["type"] == "ack"
        await phone.request({"type": "like", "side": "b", "count": 3})
        await console.wait_for(lambda f: f["type"] == "tally" and f["likes"]["b"] == 3, timeout=5)
        live = ttls()
        core = {k for k in live if k.rsplit(":", 1)[-1] in ("f", "seq", "pseq", "tl", "qid", "likes", "devs")}
        assert len(core) >= 6 and all(live[k] == -1 for k in core)  # kept while on air
        assert (await console.request({"type": "show.end"}))["type"] == "ack"
        await clients.close()
        await wait_until(lambda: any(f"show {slug} ended and has no sockets" in line for line in srv.log), timeout=15)
        ended = await wait_until(lambda: (t := ttls()) and all(0 < v <= 3600 for v in t.values()) and t, timeout=5)
        assert set(ended) >= core  # every key it had, with an expiry
    finally:
        await clients.close()
        r.close()


@pytest.mark.redis
async def test_a_show_back_on_air_keeps_its_redis_keys(own_redis, tmp_path):
    import redis

    from server.store.redis import RedisStore

    rds = own_redis()
    settings = Settings(redis_url=rds.url, redis_prefix="back", ended_retention_s=600, data_dir=str(tmp_path))
    store = RedisStore(settings)
    await store.start()
    r = redis.Redis(port=rds.port)
    try:
        state = dshow.ShowState("again", title="再来", status="live")
        await store.create_show(state)
        await store.commit("again", [{"type": "show", "show": {"status": "ended"}}])
        assert await store.unload("again")
        assert all(0 < r.ttl(k) <= 600 for k in r.scan_iter(match="back:{again}:*"))
        await store.commit("again", [{"type": "show", "show": {"status": "live"}}])
        assert all(r.ttl(k) == -1 for k in r.scan_iter(match="back:{again}:*"))
    finally:
        await store.close()
        r.close()


# -- no cyclic garbage per socket --------------------------------------------------------

GARBAGE_PROBE = """
import gc, json, os, signal
def _start(signum, frame):
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # from now on what a collection finds is kept to be looked at
    open(os.environ["GARBAGE_OUT"] + ".started", "w").close()
def _count(signum, frame):
    gc.collect()
    names = [type(o).__mro__[-2].__module__ + "." + type(o).__name__ for o in gc.garbage]
    gc.set_debug(0)
    gc.garbage.clear()
    with open(os.environ["GARBAGE_OUT"] + ".tmp", "w") as f:
        json.dump(names, f)
    os.replace(os.environ["GARBAGE_OUT"] + ".tmp", os.environ["GARBAGE_OUT"])
signal.signal(signal.SIGUSR1, _start)
signal.signal(signal.SIGUSR2, _count)
"""


async def test_phones_that_come_and_go_leave_no_cyclic_garbage(fresh_server, tmp_path):
    """A phone's socket, once closed, is freed by reference counting: nothing of it waits
    for a full garbage collection (rare with GC_THRESHOLD0 high and many sockets held)."""
    import json
    import os
    import signal
    from pathlib import Path

    import httpx

    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(GARBAGE_PROBE)
    out = tmp_path / "garbage.json"
    root = Path(__file__).resolve().parent.parent
    srv = fresh_server(PYTHONPATH=f"{site}:{root}", GARBAGE_OUT=str(out), VENUE_NETWORKS="127.0.0.0/8")
    slug = create_show(srv.url)
    warm = Clients(srv)
    await warm.audience(slug)
    await warm.close()
    os.kill(srv.proc.pid, signal.SIGUSR1)
    await wait_until(lambda: Path(f"{out}.started").exists(), timeout=10)
    clients = Clients(srv)
    phones = [await clients.audience(slug) for _ in range(40)]
    for phone in phones:
        assert (await phone.request({"type": "like", "side": "a", "count": 1}))["type"] == "ack"
    from bench.wire import OP_CLOSE, client_frame

    for phone in phones[::3]:  # some vanish without a closing handshake (a phone in a tunnel)
        phone.ws.transport.abort()
    for phone in phones[1::3]:  # some say goodbye and hang up without waiting for the answer
        phone.ws.transport.write(client_frame(b"\x03\xe8", os.urandom(4), OP_CLOSE))
        phone.ws.transport.close()
    await clients.close()
    await wait_until(lambda: 'leitai_sockets{role="audience"} 0.0' in httpx.get(f"{srv.url}/metrics").text, timeout=10)
    os.kill(srv.proc.pid, signal.SIGUSR2)
    await wait_until(out.exists, timeout=10)
    names = json.loads(out.read_text())
    protocols = [n for n in names if "Protocol" in n]
    print(f"{len(names)} objects in cycles after 40 phones came and went")
    assert len(protocols) < 5 and len(names) < 5 * 40, f"{len(names)} objects in cycles, e.g. {sorted(set(names))[:8]}"


@pytest.mark.browser
async def test_the_console_loads_older_answered_and_rejected_questions(fresh_server, browser, shots_dir):
    from conftest import TOKEN

    srv = fresh_server(SNAPSHOT_QUESTIONS="5")
    slug = create_show(srv.url)
    srv.stop()
    statuses = await seed_questions(srv.data_dir, slug, 120)
    srv.start()
    done = {qid for qid, status in statuses.items() if status in (ANSWERED, REJECTED)}
    ctx = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{srv.url}/login")
    await page.fill("input[name=token]", TOKEN)
    await page.click("button[type=submit], input[type=submit]")
    await page.wait_for_load_state()
    await page.goto(f"{srv.url}/console/{slug}")
    items = page.locator("#queue > li")
    more = page.locator(".queue-panel .more-questions")
    await wait_until(lambda: items.count(), timeout=20)

    async def shown_done() -> set[str]:
        ids = await items.evaluate_all("(els) => els.map((e) => [e.dataset.id, e.dataset.status])")
        return {qid for qid, status in ids if status in (ANSWERED, REJECTED)}

    assert len(await shown_done()) == 5

    async def filter_counts() -> dict[str, str]:
        return await page.eval_on_selector_all(
            "#filters button",
            "(bs) => Object.fromEntries(bs.map((b) => [b.dataset.filter, b.querySelector('.n').textContent]))",
        )

    partial = await filter_counts()  # older ones not loaded yet: "at least"
    assert partial["answered"].endswith("+") and partial["rejected"].endswith("+") and partial["all"].endswith("+")
    assert not partial["pending"].endswith("+"), partial  # the whole queue is in the snapshot
    await page.click("#filters button[data-filter=answered]")
    await more.scroll_into_view_if_needed()
    await page.screenshot(path=str(shots_dir / "console-older-questions.png"))
    while await more.is_visible():
        before = len(await shown_done())
        await more.click()
        await wait_until(lambda b=before: _grew(shown_done, b), timeout=10)
    assert await shown_done() == done
    final = await filter_counts()
    assert not any(n.endswith("+") for n in final.values()), final
    answered = sum(1 for status in statuses.values() if status == ANSWERED)
    assert int(final["answered"]) <= answered  # cards: a cluster of answered questions is one
    assert not errors, errors
    await ctx.close()


async def _grew(get, before: int) -> bool:
    return len(await get()) > before
