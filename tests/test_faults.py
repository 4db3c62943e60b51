"""Faults that must neither lose nor fake data (issue 11, the store's half): two
servers on one DATA_DIR, a Redis that cannot write (out of memory), a Redis
whose state was lost or is foreign, a Redis without persistence."""

import os
import re
import subprocess
import sys

import httpx
import pytest
from conftest import ROOT, Clients, create_show, wait_until


async def test_a_second_server_on_the_same_data_dir_refuses_to_start(fresh_server):
    first = fresh_server()
    slug = create_show(first.url)
    env = {**first.env, "PORT": "0"}
    second = subprocess.run(
        [sys.executable, "-m", "server"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert second.returncode != 0
    assert "is in use by another Leitai server" in second.stderr and f"pid {first.proc.pid}" in second.stderr
    assert "Uvicorn running" not in second.stdout + second.stderr
    # the first one is untouched and serves on
    assert first.proc.poll() is None
    assert httpx.get(f"{first.url}/readyz").text == "ready"
    made = Clients(first)
    try:
        phone = await made.audience(slug)
        assert (await phone.request({"type": "ask", "text": "还在吗"}))["question"] == "q1"
    finally:
        await made.close()
    # and once it is gone the lock goes with it (kill -9 too): a restart is never blocked
    first.kill()
    first.start()
    assert httpx.get(f"{first.url}/readyz").status_code == 200


def test_the_lock_is_per_data_dir(fresh_server, tmp_path):
    first = fresh_server()
    other = fresh_server(DATA_DIR=str(tmp_path))  # another DATA_DIR beside it starts
    assert first.proc.poll() is None and other.proc.poll() is None
    assert os.path.exists(tmp_path / "leitai.lock")


# -- Redis out of memory ---------------------------------------------------------------


def fill_redis(url: str) -> int:
    """Cap Redis's memory a little above what it uses (`noeviction`) and fill it until
    it refuses writes; return the bytes written. The cap then goes just below what it
    uses: Redis admits a write while it is under the cap, and some of its memory (the
    AOF buffer) is not counted, so a full Redis hovers at the line otherwise."""
    import redis

    r = redis.Redis.from_url(url)
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", int(r.info("memory")["used_memory"]) + 2_000_000)
    written = 0
    try:
        for i in range(10_000):
            r.set(f"ballast:{i}", os.urandom(32_768))
            written += 32_768
    except redis.exceptions.OutOfMemoryError:
        r.config_set("maxmemory", int(r.info("memory")["used_memory"]) - 500_000)
        return written
    finally:
        r.close()
    raise AssertionError("Redis never ran out of memory")


def ticks(srv) -> int:
    """Ticks the server has run (its tick histogram's count)."""
    text = httpx.get(f"{srv.url}/metrics").text
    return int(float(re.search(r"^leitai_tick_seconds_count (\S+)$", text, re.M).group(1)))


async def ticks_pass(srv, n: int = 3) -> None:
    """Wait until `n` more ticks have run: the likes sent so far met them."""
    start = ticks(srv)
    await wait_until(lambda: ticks(srv) >= start + n)


def set_maxmemory(url: str, value: int) -> None:
    import redis

    with redis.Redis.from_url(url) as r:
        r.config_set("maxmemory", value)


@pytest.mark.redis
async def test_redis_out_of_memory_answers_unavailable_and_loses_no_like(fresh_server, own_redis):
    redis = own_redis()  # with persistence
    srv = fresh_server(REDIS_URL=redis.url, LIKE_RATE="100000", LIKE_BURST="100000", FRAME_BURST="1000")
    slug = create_show(srv.url)
    made = Clients(srv)
    try:
        console = await made.console(slug)
        overlay = await made.overlay(slug)
        phones = [await made.audience(slug) for _ in range(3)]
        assert (await console.request({"type": "round.start", "topic": "内存满了", "duration_s": 300}))["type"] == "ack"
        await phones[0].wait_type("round")
        assert (await phones[0].request({"type": "vote", "side": "a"}))["type"] == "ack"
        qid = (await phones[0].request({"type": "ask", "text": "内存满之前"}))["question"]
        sent = 0
        for phone in phones:
            for _ in range(4):
                await phone.send({"type": "like", "side": "a", "count": 50})
                sent += 50
        await overlay.wait_for(lambda f: f["type"] == "tally" and f["likes"]["a"] == sent)

        fill_redis(redis.url)
        await wait_until(lambda: httpx.get(f"{srv.url}/readyz").status_code == 503)
        assert "OOM" in httpx.get(f"{srv.url}/readyz").text
        # while Redis refuses writes: likes are taken and kept, every write gets `unavailable`
        for round_ in range(5):
            for phone in phones:
                for _ in range(4):
                    await phone.send({"type": "like", "side": "a", "count": 50})
                    sent += 50
            # a reply after the likes: they are in the server's buffer, and ticks fail meanwhile
            for phone in phones:
                reply = await phone.request({"type": "vote", "side": "b"})
                assert reply["type"] == "error" and reply["code"] == "unavailable", reply
            reply = await phones[round_ % 3].request({"type": "ask", "text": f"内存满了 {round_}"})
            assert reply["type"] == "error" and reply["code"] == "unavailable", reply
            await ticks_pass(srv)  # ticks fail with these likes in hand
        assert (await phones[1].request({"type": "upvote", "question": qid}))["code"] == "unavailable"
        assert (await console.request({"type": "points.set", "side": "a", "points": 3}))["code"] == "unavailable"
        assert all(c.close_code is None and not c._reader.done() for c in [console, overlay, *phones])
        assert overlay.last_tally()["likes"]["a"] < sent  # frozen while Redis cannot count

        set_maxmemory(redis.url, 0)  # the operator gives it room
        await wait_until(lambda: httpx.get(f"{srv.url}/readyz").status_code == 200, timeout=10)
        tally = await overlay.wait_for(lambda f: f["type"] == "tally" and f["likes"]["a"] == sent, timeout=10)
        assert tally["votes"] == {"a": 1, "b": 0}  # the refused votes are nowhere
        assert (await phones[1].request({"type": "vote", "side": "b"}))["type"] == "ack"
        assert (await phones[1].request({"type": "ask", "text": "内存回来了"}))["question"] == "q2"
        log = "".join(srv.log)
        assert "Exception in ASGI application" not in log and "tick failed" not in log
        assert "likes on" not in log  # none dropped
    finally:
        await made.close()


@pytest.mark.redis
async def test_an_unforeseen_error_closes_that_socket_1011_and_is_logged_once(fresh_server, own_redis):
    """A reply no code expects (here a key of the wrong type, as a hand-edited or foreign
    Redis would give) ends the socket that met it with 1011 and one log line; the server
    and every other socket serve on."""
    import redis as redis_py

    redis = own_redis()
    srv = fresh_server(REDIS_URL=redis.url)
    slug = create_show(srv.url)
    with redis_py.Redis.from_url(redis.url) as r:
        r.delete(f"lt:{{{slug}}}:qid")
        r.hset(f"lt:{{{slug}}}:qid", "not", "a counter")  # INCR on it: WRONGTYPE
    made = Clients(srv)
    try:
        console = await made.console(slug)
        phones = [await made.audience(slug) for _ in range(3)]
        for phone in phones[:2]:
            await phone.send({"type": "ask", "text": "坏掉的键", "id": "x1"})
            assert await phone.closed() == 1011
        assert (await phones[2].request({"type": "like", "side": "a", "count": 1}))["type"] == "ack"
        assert (await console.request({"type": "points.set", "side": "a", "points": 2}))["type"] == "ack"
        assert httpx.get(f"{srv.url}/readyz").status_code == 200
        log = "".join(srv.log)
        assert log.count("a socket handler failed") == 1, log[-2000:]
        assert "WRONGTYPE" in log and "Exception in ASGI application" not in log
        assert "leitai_socket_failures_total 2.0" in httpx.get(f"{srv.url}/metrics").text
    finally:
        await made.close()


@pytest.mark.redis
async def test_a_read_only_redis_answers_unavailable_and_the_likes_go_back(fresh_server, own_redis):
    """A Redis turned replica (a failover gone wrong) refuses every write, the likes
    script too: the taps each failed tick took go back and are counted once it is a
    master again."""
    import redis as redis_py

    redis = own_redis()
    srv = fresh_server(REDIS_URL=redis.url, LIKE_RATE="100000", LIKE_BURST="100000", FRAME_BURST="1000")
    slug = create_show(srv.url)
    made = Clients(srv)
    r = redis_py.Redis.from_url(redis.url)
    try:
        overlay = await made.overlay(slug)
        phones = [await made.audience(slug) for _ in range(2)]
        sent = 0
        r.replicaof("127.0.0.1", 1)  # a master that is not there: the data stays, writes are refused
        await wait_until(lambda: "READONLY" in httpx.get(f"{srv.url}/readyz").text)
        for _ in range(5):
            for phone in phones:
                await phone.send({"type": "like", "side": "b", "count": 40})
                sent += 40
            for phone in phones:  # replies after the likes: they are in the server's buffer
                assert (await phone.request({"type": "ask", "text": "只读"}))["code"] == "unavailable"
            await ticks_pass(srv)  # ticks fail with these likes in hand
        assert overlay.last_tally()["likes"]["b"] == 0
        r.replicaof("NO", "ONE")
        await overlay.wait_for(lambda f: f["type"] == "tally" and f["likes"]["b"] == sent, timeout=10)
        assert httpx.get(f"{srv.url}/readyz").status_code == 200
        assert "likes on" not in "".join(srv.log)  # none dropped
    finally:
        r.close()
        await made.close()


@pytest.mark.redis
async def test_a_tick_refused_after_counting_its_likes_does_not_count_them_twice(fresh_server, own_redis):
    """The likes script counts the taps and a later command of the same tick is refused
    (here by an ACL on ZADD; in life, memory crossing the line mid-tick): the taps are in,
    so they are not put back to be counted again."""
    import redis as redis_py

    redis = own_redis()
    srv = fresh_server(REDIS_URL=redis.url, LIKE_RATE="100000", LIKE_BURST="100000")
    slug = create_show(srv.url)
    made = Clients(srv)
    r = redis_py.Redis.from_url(redis.url)
    try:
        overlay = await made.overlay(slug)
        phone = await made.audience(slug)
        r.acl_setuser("default", enabled=True, nopass=True, commands=["-zadd"], reset_keys=False)
        sent = 0
        for _ in range(3):
            await phone.send({"type": "like", "side": "a", "count": 30})
            sent += 30
            assert (await phone.request({"type": "hello"}))["type"] == "ack"
            await ticks_pass(srv)
        assert int(r.hget(f"lt:{{{slug}}}:likes", "a") or 0) == sent  # counted, once
        r.acl_setuser("default", enabled=True, nopass=True, commands=["+@all"], reset_keys=False)
        await overlay.wait_for(lambda f: f["type"] == "tally" and f["likes"]["a"] == sent, timeout=10)
        await ticks_pass(srv)
        assert overlay.last_tally()["likes"]["a"] == sent
    finally:
        r.close()
        await made.close()


# -- Redis without persistence -------------------------------------------------------------


@pytest.mark.redis
def test_a_redis_that_keeps_nothing_on_disk_is_refused_unless_allowed(fresh_server, own_redis, tmp_path):
    volatile = own_redis(aof=False)  # appendonly no, save ""
    env = {**os.environ, "PORT": "0", "REDIS_URL": volatile.url, "DATA_DIR": str(tmp_path)}
    refused = subprocess.run(
        [sys.executable, "-m", "server"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0, out
    assert "Redis keeps nothing on disk" in out and "REDIS_ALLOW_NO_PERSISTENCE=1" in out
    assert "Application startup complete" not in out
    allowed = fresh_server(REDIS_URL=volatile.url, REDIS_ALLOW_NO_PERSISTENCE="1")
    assert httpx.get(f"{allowed.url}/readyz").status_code == 200
    assert any("REDIS_ALLOW_NO_PERSISTENCE=1: Redis keeps nothing on disk" in line for line in allowed.log)
    durable = fresh_server(REDIS_URL=own_redis().url)  # AOF on: no word about it
    assert not any("on disk" in line or "AOF off" in line for line in durable.log)


# -- Redis lost its state, or holds another -------------------------------------------------


def readyz(srv) -> httpx.Response:
    return httpx.get(f"{srv.url}/readyz")


@pytest.mark.redis
async def test_a_flushed_redis_is_noticed_and_nothing_more_is_acknowledged(fresh_server, own_redis):
    import redis as redis_py

    redis = own_redis()
    a, b = fresh_server(REDIS_URL=redis.url), fresh_server(REDIS_URL=redis.url)
    slug = create_show(a.url)
    on_a, on_b = Clients(a), Clients(b)
    try:
        console = await on_a.console(slug)
        phone = await on_b.audience(slug)
        acked = [(await phone.request({"type": "ask", "text": "清空之前"}))["question"]]
        assert acked == ["q1"]
        assert readyz(a).status_code == readyz(b).status_code == 200

        with redis_py.Redis.from_url(redis.url) as r:
            r.flushall()
        # noticed by each process on its own (its tick reads the epoch), before anyone writes
        for srv in (a, b):
            await wait_until(lambda srv=srv: readyz(srv).status_code == 503)
            assert "state lost" in readyz(srv).text and "epoch" in readyz(srv).text
        notice = await console.wait_type("notice")
        assert notice["kind"] == "store_lost" and "Redis has lost its state" in notice["message"]
        # no write is acknowledged any more, and the reply says why
        for text in ("清空之后", "再问一次"):
            reply = await phone.request({"type": "ask", "text": text})
            assert reply["type"] == "error" and reply["code"] == "unavailable", reply
            assert "lost" in reply["message"]
            acked += [reply["question"]] if "question" in reply else []
        assert (await phone.request({"type": "like", "side": "a", "count": 1}))["code"] == "unavailable"
        reply = await console.request({"type": "points.set", "side": "a", "points": 1})
        assert reply["code"] == "unavailable" and "lost" in reply["message"]
        assert len(acked) == len(set(acked)) == 1
        # the replicas keep the last true copy for reading; a console that comes now sees the banner
        late = await on_a.console(slug)
        snap = late.frames[0]
        assert snap["notice"]["kind"] == "store_lost" and [q["id"] for q in snap["show"]["questions"]] == ["q1"]
        for srv in (a, b):
            log = "".join(srv.log)
            assert log.count("STATE LOST") == 1, log[-3000:]
    finally:
        await on_a.close()
        await on_b.close()


@pytest.mark.redis
async def test_votes_and_upvotes_into_a_flushed_redis_are_refused_before_any_tick_notices(own_redis, tmp_path):
    """The tick reads the epoch every 100 ms; a vote or an upvote that comes in between
    must not be acknowledged into the empty state (the operator would restore the old one
    and lose it). Each ballot and upvote script checks that its show is still there."""
    import redis as redis_py

    from server.domain.integrity import Voter
    from server.domain.show import new_show
    from server.settings import Settings
    from server.store import StateLost, make_store

    srv = own_redis()
    store = make_store(Settings.from_env(redis_url=srv.url, data_dir=str(tmp_path)))
    await store.start()
    try:
        await store.create_show(new_show("s1", "第一期", {"a": {"name": "红方"}, "b": {"name": "蓝方"}}))
        voter = Voter("10.0.0.0/24", False, 0)
        assert (await store.vote("s1", 1, "dev1", "a", voter)).side == "a"
        assert await store.upvote("s1", "q1", "dev1") == 1
        with redis_py.Redis.from_url(srv.url) as r:
            r.flushall()
            attempts = {
                "vote": lambda: store.vote("s1", 1, "dev2", "b", voter),
                "stance": lambda: store.vote("s1", "pre", "dev2", "b", voter),
                "upvote": lambda: store.upvote("s1", "q1", "dev2"),
                "unvote": lambda: store.unvote("s1", 1, "dev1"),
                "release": lambda: store.release_votes("s1", 1, ""),
            }
            for name, attempt in attempts.items():
                store.lost = ""  # each script's own check, not the first one's verdict
                with pytest.raises(StateLost):
                    await attempt()
                assert "gone from Redis" in store.lost, name
                assert r.keys("*") == [], name  # nothing written into the empty state
    finally:
        await store.close()


@pytest.mark.redis
async def test_the_season_takes_no_write_once_the_state_is_lost(fresh_server, own_redis):
    """One Redis holds the shows and the season: once a process has found its state lost
    (here with no show on air: its idle check of the epoch),
    a new guest, a talk request or a photo is refused with the reason, and nothing of the
    season is written into the empty Redis."""
    import redis as redis_py
    from conftest import host_cookies

    redis = own_redis()
    srv = fresh_server(REDIS_URL=redis.url)
    guest = {"name": "王伟", "org": "澳洋医院", "title": "党委副书记", "sector": "hospital", "bio": "简介"}
    with httpx.Client(base_url=srv.url, cookies=host_cookies(srv.url)) as producer:
        assert producer.post("/api/guests", json=guest).status_code == 201
        with redis_py.Redis.from_url(redis.url) as r:
            r.flushall()
            await wait_until(lambda: readyz(srv).status_code == 503)
            refused = producer.post("/api/guests", json={**guest, "name": "李娜"})
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"] == "unavailable" and "lost" in refused.json()["message"]
            assert r.keys("*season*") == [], r.keys("*")
        assert producer.get("/api/guests").json() == []  # reads still answer (the flushed Redis is empty)


@pytest.mark.redis
async def test_a_redis_restarted_empty_is_noticed_and_only_the_operator_takes_the_new_state(fresh_server, own_redis):
    import shutil

    redis = own_redis()
    a, b = fresh_server(REDIS_URL=redis.url), fresh_server(REDIS_URL=redis.url)
    slug = create_show(a.url)
    made = Clients(b)
    try:
        phone = await made.audience(slug)
        assert (await phone.request({"type": "ask", "text": "重启之前"}))["question"] == "q1"
        redis.kill()
        shutil.rmtree(redis.dir)  # its files gone: it comes back empty
        os.mkdir(redis.dir)
        redis.start()
        for srv in (a, b):
            await wait_until(lambda srv=srv: "state lost" in readyz(srv).text, timeout=10)
        reply = await phone.request({"type": "ask", "text": "重启之后"})
        assert reply["code"] == "unavailable" and "lost" in reply["message"]

        # a process restarted on its DATA_DIR still knows the old state: it serves nothing new
        a.stop()
        a.start()
        assert "state lost" in readyz(a).text
        assert "the demo show was not made" in "".join(a.log)
        with httpx.Client(base_url=a.url) as http:
            assert http.get("/api/shows/demo").status_code == 404

        # the operator accepts the new state: the restarted process serves it, the other one
        # (still on the old state) keeps refusing until it is restarted too
        a.stop()
        a.env["REDIS_ACCEPT_NEW_STATE"] = "1"
        a.start()
        assert readyz(a).status_code == 200
        fresh = create_show(a.url)
        assert "another state" in readyz(b).text or "lost its state" in readyz(b).text
        b.stop()
        b.env["REDIS_ACCEPT_NEW_STATE"] = "1"
        b.start()
        assert readyz(b).status_code == 200
        made2 = Clients(b)
        try:
            phone2 = await made2.audience(fresh)
            assert (await phone2.request({"type": "ask", "text": "新的开始"}))["question"] == "q1"
        finally:
            await made2.close()
    finally:
        await made.close()


@pytest.mark.redis
async def test_a_redis_restored_from_an_older_copy_is_noticed(fresh_server, own_redis):
    """Same epoch, but the show's history went back (an older backup): `seq` backwards."""
    import shutil

    import redis as redis_py

    redis = own_redis()
    srv = fresh_server(REDIS_URL=redis.url)
    slug = create_show(srv.url)
    made = Clients(srv)
    try:
        console = await made.console(slug)
        assert (await console.request({"type": "points.set", "side": "a", "points": 1}))["type"] == "ack"
        with redis_py.Redis.from_url(redis.url) as r:
            r.bgrewriteaof()
            await wait_until(lambda: r.info("persistence")["aof_rewrite_in_progress"] == 0)
        older = redis.dir + "-older"
        shutil.copytree(redis.dir, older)  # appendfsync always: the copy holds every write so far
        for points in (2, 3, 4):
            assert (await console.request({"type": "points.set", "side": "a", "points": points}))["type"] == "ack"
        redis.kill()
        shutil.rmtree(redis.dir)
        shutil.copytree(older, redis.dir)
        shutil.rmtree(older)
        redis.start()
        await wait_until(lambda: "went back from seq" in readyz(srv).text, timeout=10)
        # found while resyncing: the console's fresh snapshot carries the notice
        frame = await console.wait_for(lambda f: f["type"] == "notice" or "notice" in f)
        notice = frame.get("notice", frame)
        assert "went back" in notice["message"]
        assert frame.get("show", {}).get("points", {"a": 4})["a"] == 4  # the last true copy, not the older one
        assert (await console.request({"type": "points.set", "side": "a", "points": 5}))["code"] == "unavailable"
    finally:
        await made.close()


@pytest.mark.redis
async def test_a_show_gone_from_redis_is_noticed_at_the_next_write(fresh_server, own_redis):
    """Only the show's keys deleted (a hand-made mistake; the epoch is intact): its next
    commit finds the show gone, says so, and acknowledges nothing."""
    import redis as redis_py

    redis = own_redis()
    srv = fresh_server(REDIS_URL=redis.url)
    slug = create_show(srv.url)
    made = Clients(srv)
    try:
        phone = await made.audience(slug)
        assert (await phone.request({"type": "ask", "text": "之前"}))["question"] == "q1"
        with redis_py.Redis.from_url(redis.url) as r:
            r.delete(*r.keys(f"lt:{{{slug}}}:*"))
        reply = await phone.request({"type": "ask", "text": "之后"})
        assert reply["code"] == "unavailable" and "gone from Redis" in reply["message"], reply
        assert "state lost" in readyz(srv).text
    finally:
        await made.close()


@pytest.mark.redis
@pytest.mark.browser
async def test_the_console_shows_a_banner_when_the_state_is_lost(fresh_server, own_redis, browser, shots_dir):
    """In Chromium: the console says the stored state was lost, in a banner that stays
    (and is there for a console opened afterwards), while it keeps showing the show."""
    import redis as redis_py
    from browser import PageErrors
    from test_on_air_pages import signed_in_context

    redis = own_redis()
    srv = fresh_server(REDIS_URL=redis.url)
    slug = create_show(srv.url)
    ctx = await signed_in_context(browser, srv.url)
    try:
        page = await ctx.new_page()
        errors = PageErrors(page)
        await page.goto(f"{srv.url}/console/{slug}")
        await page.wait_for_selector("#conn-status[data-state=open]")
        assert await page.is_hidden("#store-lost")
        with redis_py.Redis.from_url(redis.url) as r:
            r.flushall()
        await page.wait_for_selector("#store-lost", state="visible", timeout=5000)
        text = await page.inner_text("#store-lost")
        assert "节目数据存储已丢失" in text and "Redis has lost its state" in text
        await page.screenshot(path=str(shots_dir / "console-store-lost.png"))
        later = await ctx.new_page()
        await later.goto(f"{srv.url}/console/{slug}")
        await later.wait_for_selector("#store-lost", state="visible", timeout=5000)
        assert not errors.errors, errors.errors
    finally:
        await ctx.close()
