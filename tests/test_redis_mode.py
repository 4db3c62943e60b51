"""Many processes, one Redis: the same show everywhere, nothing acknowledged lost."""

import asyncio
import time

import httpx
import pytest
from conftest import Client, Clients, Server, create_show, wait_until

pytestmark = pytest.mark.redis


@pytest.fixture
def pair(fresh_server, redis_server):
    env = {
        "REDIS_URL": redis_server.url,
        "REDIS_PREFIX": f"pair{time.monotonic_ns()}",
        "VIEWER_TTL_S": "2",
        "LIKE_BURST": "1000",
    }
    return fresh_server(**env), fresh_server(**env)


async def test_a_resend_to_another_process_gets_the_first_reply(pair):
    """Replies are remembered in Redis: a phone that lost an ack and came back through
    the other process gets the first reply, and the question is asked once."""
    a, b = pair
    slug = create_show(a.url)
    on_a, on_b = Clients(a), Clients(b)
    try:
        console = await on_b.console(slug)
        phone = await on_a.audience(slug)
        cookie = phone.ws.request.headers["Cookie"].split("=", 1)[1]
        first = await phone.request({"type": "ask", "text": "只问一次", "id": "hop-1"})
        back = await on_b.audience(slug, cookie=cookie)
        assert await back.request({"type": "ask", "text": "只问一次", "id": "hop-1"}) == first
        await console.request({"type": "points.set", "side": "a", "points": 1, "id": "after"})
        fresh = await on_a.console(slug)
        assert [q["text"] for q in fresh.frames[0]["show"]["questions"]] == ["只问一次"]
        del console
    finally:
        await on_a.close()
        await on_b.close()


async def test_a_device_spread_over_processes_gets_one_devices_budget(fresh_server, redis_server):
    env = {
        "REDIS_URL": redis_server.url,
        "REDIS_PREFIX": f"budget{time.monotonic_ns()}",
        "LIKE_BURST": "30",
        "LIKE_RATE": "1",
        "QUESTION_INTERVAL_S": "60",
    }
    a, b = fresh_server(**env), fresh_server(**env)
    slug = create_show(a.url)
    on_a, on_b = Clients(a), Clients(b)
    try:
        overlay = await on_a.overlay(slug)
        one = await on_a.audience(slug)
        cookie = one.ws.request.headers["Cookie"].split("=", 1)[1]
        two = await on_b.audience(slug, cookie=cookie)
        assert (await one.request({"type": "ask", "text": "第一个"}))["type"] == "ack"
        assert (await two.request({"type": "ask", "text": "第二个"}))["code"] == "rate_limited"
        for _ in range(4):
            await one.send({"type": "like", "side": "a", "count": 40})
            await two.send({"type": "like", "side": "a", "count": 40})
        await one.request({"type": "hello", "id": "h1"})
        await two.request({"type": "hello", "id": "h2"})
        other = await on_b.audience(slug)  # a marker from another device, after both flushes
        await other.request({"type": "like", "side": "b", "count": 1})
        t = await overlay.wait_for(lambda f: f["type"] == "tally" and f["likes"]["b"] == 1)
        assert 30 <= t["likes"]["a"] <= 30 + 5, "one device's cap, not one per process"
    finally:
        await on_a.close()
        await on_b.close()


async def test_a_device_hopping_between_processes_gets_one_devices_sockets(fresh_server, redis_server):
    """A script that reconnects in a loop, alternating processes, gets one device's
    budget of new sockets (CONNECT_BURST), not one per process."""
    env = {
        "REDIS_URL": redis_server.url,
        "REDIS_PREFIX": f"hop{time.monotonic_ns()}",
        "CONNECT_BURST": "4",
        "CONNECT_RATE": "0.2",
    }
    a, b = fresh_server(**env), fresh_server(**env)
    slug = create_show(a.url)
    cookie = (await Clients(a).audience(slug)).ws.request.headers["Cookie"].split("=", 1)[1]  # its 1st socket

    async def first_frame(srv: Server) -> str | int:
        c = await Client.connect(srv.ws_url, "audience", slug, f"lt_device={cookie}")
        try:
            return (await c.wait_for(lambda f: True))["type"]
        except ConnectionError:
            return c.close_code
        finally:
            await c.close()

    got = [await first_frame(srv) for srv in (b, a, b, a, b)]
    assert got == ["snapshot"] * 3 + [1013] * 2, got


async def test_likes_on_one_process_reach_an_overlay_on_the_other(pair):
    a, b = pair
    slug = create_show(a.url)
    on_a, on_b = Clients(a), Clients(b)
    try:
        overlay = await on_b.overlay(slug)
        phones = [await on_a.audience(slug) for _ in range(3)]
        phones.append(await on_b.audience(slug))
        for i in range(25):
            for phone in phones:
                await phone.send({"type": "like", "side": "ab"[i % 2], "count": 4})
        tally = await overlay.wait_for(lambda f: f["type"] == "tally" and sum(f["likes"].values()) == 400)
        assert tally["likes"] == {"a": 208, "b": 192}
        # counted exactly, not twice: one more like through each process, acknowledged, so
        # each process's next flush (ticks run in order) comes after every flush of the 400;
        # the first tally that shows both markers shows anything counted twice as well
        seen = len(overlay.frames)
        for phone in (phones[0], phones[-1]):  # on a, on b
            assert (await phone.request({"type": "like", "side": "b", "count": 1}))["type"] == "ack"
        after = await overlay.wait_for(lambda f: f["type"] == "tally" and sum(f["likes"].values()) >= 402, start=seen)
        assert after["likes"] == {"a": 208, "b": 194}
        assert overlay.last_tally()["likes"] == {"a": 208, "b": 194}
    finally:
        await on_a.close()
        await on_b.close()


async def test_viewers_sum_across_processes_and_fall(pair):
    a, b = pair
    slug = create_show(a.url)
    on_a, on_b = Clients(a), Clients(b)
    try:
        overlay = await on_a.overlay(slug)
        phones_a = [await on_a.audience(slug) for _ in range(2)]
        phones_b = [await on_b.audience(slug) for _ in range(3)]
        await overlay.wait_for(lambda f: f["type"] == "tally" and f["viewers"] == 5)
        for phone in phones_b[:2]:
            await phone.close()
        await overlay.wait_for(lambda f: f["type"] == "tally" and f["viewers"] == 3)
        t = overlay.last_tally()
        assert t["peak_viewers"] == 5 and t["unique_viewers"] == 5
        del phones_a
    finally:
        await on_a.close()
        await on_b.close()


async def test_question_asked_on_one_approved_on_the_other(pair):
    a, b = pair
    slug = create_show(a.url)
    on_a, on_b = Clients(a), Clients(b)
    try:
        phone = await on_a.audience(slug)
        console = await on_b.console(slug)
        overlays = [await on_a.overlay(slug), await on_b.overlay(slug)]
        qid = (await phone.request({"type": "ask", "text": "跨进程的问题"}))["question"]
        await console.wait_for(lambda f: f["type"] == "question" and f["question"]["id"] == qid)
        assert (await console.request({"type": "question.approve", "question": qid}))["type"] == "ack"
        assert (await console.request({"type": "question.feature", "question": qid}))["type"] == "ack"
        for overlay in overlays:
            await overlay.wait_for(lambda f: f["type"] == "question" and f["question"].get("text") == "跨进程的问题")
            await overlay.wait_for(lambda f: f["type"] == "show" and f["show"].get("featured") == qid)
            seqs = [x["seq"] for x in overlay.frames[1:] if x["type"] not in ("tally",)]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gaps across processes
        # host actions from both processes interleave safely (compare-and-set)
        console_a = await on_a.console(slug)
        results = await asyncio.gather(
            *(
                c.request({"type": "points.set", "side": side, "points": n})
                for n in range(1, 6)
                for c, side in ((console, "a"), (console_a, "b"))
            )
        )
        assert all(r["type"] == "ack" for r in results)
        await overlays[0].wait_for(lambda f: f["type"] == "tally" and f["points"] == {"a": 5, "b": 5}, timeout=5)
    finally:
        await on_a.close()
        await on_b.close()


async def test_redis_restart_mid_show(fresh_server, own_redis):
    redis = own_redis()
    env = {"REDIS_URL": redis.url, "VIEWER_TTL_S": "2", "LIKE_BURST": "1000"}  # 70 taps in a blink
    a, b = fresh_server(**env), fresh_server(**env)
    slug = create_show(a.url)
    on_a, on_b = Clients(a), Clients(b)
    try:
        console = await on_a.console(slug)
        overlay = await on_b.overlay(slug)
        phone = await on_b.audience(slug)
        assert (await console.request({"type": "round.start", "topic": "断线测试", "duration_s": 300}))["type"] == "ack"
        await phone.wait_type("round")
        assert (await phone.request({"type": "vote", "side": "b"}))["type"] == "ack"
        qid = (await phone.request({"type": "ask", "text": "Redis 重启后还在吗"}))["question"]
        assert (await console.request({"type": "question.approve", "question": qid}))["type"] == "ack"
        await phone.send({"type": "like", "side": "a", "count": 50})
        await overlay.wait_for(lambda f: f["type"] == "tally" and f["likes"]["a"] == 50)
        before = overlay.last_tally()

        redis.kill()
        await wait_until(lambda: httpx.get(f"{b.url}/readyz").status_code == 503)
        # during the outage: likes are kept in the process, acknowledged writes refused
        await phone.send({"type": "like", "side": "a", "count": 20})
        reply = await phone.request({"type": "vote", "side": "a"})
        assert reply["code"] == "unavailable"
        snaps_before = [len([f for f in c.frames if f["type"] == "snapshot"]) for c in (overlay, phone, console)]

        t0 = time.monotonic()
        redis.start()
        for c, n in zip((overlay, phone, console), snaps_before):
            await wait_until(lambda c=c, n=n: len([f for f in c.frames if f["type"] == "snapshot"]) > n, timeout=15)
        recovery = time.monotonic() - t0
        print(f"\nresync after Redis restart: {recovery:.2f} s")
        snap = [f for f in overlay.frames if f["type"] == "snapshot"][-1]["show"]
        assert snap["tally"]["votes"] == {"a": 0, "b": 1}  # the acked vote survived; the refused one is not there
        assert [q["id"] for q in snap["questions"] if q["id"] == qid] == [qid]
        tally = await overlay.wait_for(lambda f: f["type"] == "tally" and f["likes"]["a"] == 70, timeout=10)
        assert tally["likes"]["a"] >= before["likes"]["a"]
        assert httpx.get(f"{b.url}/readyz").status_code == 200
        assert (await phone.request({"type": "vote", "side": "a"}))["type"] == "ack"
    finally:
        await on_a.close()
        await on_b.close()


async def test_a_process_dies_the_other_serves(fresh_server, redis_server):
    env = {"REDIS_URL": redis_server.url, "REDIS_PREFIX": f"die{time.monotonic_ns()}", "VIEWER_TTL_S": "2"}
    a, b = fresh_server(**env), fresh_server(**env)
    slug = create_show(a.url)
    on_a, on_b = Clients(a), Clients(b)
    try:
        overlay = await on_b.overlay(slug)
        for _ in range(3):
            await on_a.audience(slug)
        phone_b = await on_b.audience(slug)
        await overlay.wait_for(lambda f: f["type"] == "tally" and f["viewers"] == 4)
        await phone_b.send({"type": "like", "side": "b", "count": 9})
        await overlay.wait_for(lambda f: f["type"] == "tally" and f["likes"]["b"] == 9)
        a.kill()
        await overlay.wait_for(lambda f: f["type"] == "tally" and f["viewers"] == 1, timeout=8)
        await phone_b.send({"type": "like", "side": "b", "count": 1})
        await overlay.wait_for(lambda f: f["type"] == "tally" and f["likes"]["b"] == 10)
        a.start()
        on_a = Clients(a)
        again = await on_a.overlay(slug)
        assert again.frames[0]["show"]["tally"]["likes"]["b"] == 10
        assert again.frames[0]["seq"] == overlay.frames[0]["seq"]
    finally:
        await on_a.close()
        await on_b.close()


async def test_workers_2_serve_one_show(fresh_server, redis_server):
    from conftest import _free_port

    # uvicorn's multi-process supervisor does not report a port 0 back: pick one
    port = _free_port()
    srv = fresh_server(REDIS_URL=redis_server.url, REDIS_PREFIX=f"w{time.monotonic_ns()}", WORKERS="2", PORT=str(port))
    slug = create_show(srv.url)
    made = Clients(srv)
    try:
        overlay = await made.overlay(slug)
        phones = [await made.audience(slug) for _ in range(8)]
        for phone in phones:
            await phone.send({"type": "like", "side": "a", "count": 5})
        await overlay.wait_for(lambda f: f["type"] == "tally" and f["likes"]["a"] == 40 and f["viewers"] == 8)
        pids = {line.split("[")[1].split("]")[0] for line in srv.log if "Started server process" in line}
        assert len(pids) >= 2
    finally:
        await made.close()


def test_workers_refused_in_embedded_mode(fresh_server):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    env = {**os.environ, "WORKERS": "2", "PORT": "0"}
    env.pop("REDIS_URL", None)
    r = subprocess.run([sys.executable, "-m", "server"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and "REDIS_URL" in r.stderr


async def test_verdicts_across_processes(pair):
    """Stances taken on both processes make one matrix; a sealed round is sealed on both."""
    a, b = pair
    slug = create_show(a.url)
    on_a, on_b = Clients(a), Clients(b)
    try:
        console = await on_a.console(slug)
        overlay = await on_b.overlay(slug)
        phones = [await on_a.audience(slug) for _ in range(3)] + [await on_b.audience(slug) for _ in range(3)]
        await console.request({"type": "stance.open", "phase": "pre"})
        await overlay.wait_for(lambda f: f["type"] == "show" and "stance_phases" in f["show"])
        for phone, side in zip(phones, "aaabbu"):
            assert (await phone.request({"type": "stance", "phase": "pre", "side": side}))["type"] == "ack"
        await console.request({"type": "round.start", "topic": "封存", "duration_s": 60, "sealed": True})
        await phones[-1].wait_for(lambda f: f["type"] == "round")
        for phone, side in zip(phones, "abbbba"):
            await phone.request({"type": "vote", "side": side})
        o = await overlay.wait_for(lambda f: f["type"] == "tally" and f.get("ballots") == 6)
        assert o["votes"] is None
        await console.wait_for(lambda f: f["type"] == "tally" and f["votes"] == {"a": 2, "b": 4})
        await console.request({"type": "round.end"})
        await console.request({"type": "stance.open", "phase": "post"})
        await phones[-1].wait_for(
            lambda f: f["type"] == "show" and f["show"].get("stance_phases", {}).get("post") == "open"
        )
        for phone, side in zip(phones, "abbbbb"):
            await phone.request({"type": "stance", "phase": "post", "side": side})
        t = await overlay.wait_for(
            lambda f: f["type"] == "tally" and "stance" in f and sum(f["stance"]["post"].values()) == 6
        )
        swing = t["stance"]["swing"]
        assert t["stance"]["matrix"]["a"]["b"] == 2 and t["stance"]["matrix"]["u"]["b"] == 1
        assert swing["devices"] == 6 and swing["winner"] == "b" and swing["gain"]["b"] == 50.0
    finally:
        await on_a.close()
        await on_b.close()
