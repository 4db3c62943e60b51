"""Scale-out: a process receives only the shows it serves; a reconnecting client
resumes from its last seq; /metrics adds up every worker."""

import re
import time

import httpx
import pytest
from conftest import Clients, create_show, wait_until

pytestmark = pytest.mark.redis


@pytest.fixture
def pair(fresh_server, redis_server):
    env = {"REDIS_URL": redis_server.url, "REDIS_PREFIX": f"scale{time.monotonic_ns()}", "VIEWER_TTL_S": "2"}
    return fresh_server(**env), fresh_server(**env)


def received(srv) -> int:
    """Show events and signals the process has decoded (its /metrics)."""
    text = httpx.get(f"{srv.url}/metrics").text
    return int(float(re.search(r"^leitai_store_messages_total (\S+)$", text, re.M).group(1)))


async def test_a_process_receives_only_the_shows_it_serves(pair):
    """A has sockets for show 1 only: show 2's events never reach it, while show 1 is
    served; a socket for show 2 on A gets a snapshot and then follows show 2; when it
    leaves, A stops receiving show 2 again."""
    a, b = pair
    one, two = create_show(a.url), create_show(a.url)
    on_a, on_b = Clients(a), Clients(b)
    try:
        phone = await on_a.audience(one)
        host1, host2 = await on_b.console(one), await on_b.console(two)
        points = iter(range(1, 100))

        async def step(show_two_events: int) -> int:
            """What A decodes for `show_two_events` events of show 2 then one of show 1.
            (One connection carries A's subscriptions in publish order: once A's phone
            has the show-1 event, any show-2 event A were sent has been decoded.)"""
            before = received(a)
            for _ in range(show_two_events):
                reply = await host2.request({"type": "points.set", "side": "b", "points": next(points)})
                assert reply["type"] == "ack"
            n = next(points)
            assert (await host1.request({"type": "points.set", "side": "a", "points": n}))["type"] == "ack"
            await phone.wait_for(lambda f: f["type"] == "points" and f["points"]["a"] == n)
            return received(a) - before

        alone = await step(0)
        assert alone >= 1
        assert await step(6) == alone  # show 2's six events never reached A
        last = await host2.request({"type": "points.set", "side": "b", "points": 50})
        assert last["type"] == "ack"

        phone2 = await on_a.audience(two)  # A now serves show 2: it catches up and follows
        assert phone2.frames[0]["show"]["tally"]["points"]["b"] == 50
        assert (await host2.request({"type": "points.set", "side": "b", "points": 51}))["type"] == "ack"
        await phone2.wait_for(lambda f: f["type"] == "points" and f["points"]["b"] == 51)
        assert await step(3) > alone

        await phone2.close()  # its last socket left: A lets show 2 go

        async def quiet() -> bool:
            return await step(2) == alone

        await wait_until(quiet, timeout=10, interval=0.1)
    finally:
        await on_a.close()
        await on_b.close()


def figure(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert m, name
    return float(m.group(1))


async def test_metrics_add_up_every_worker(fresh_server, redis_server):
    """WORKERS=2: whichever worker answers /metrics reports both workers' sockets,
    frames and ticks, summed."""
    from conftest import _free_port

    port = _free_port()
    srv = fresh_server(REDIS_URL=redis_server.url, REDIS_PREFIX=f"m{time.monotonic_ns()}", WORKERS="2", PORT=str(port))
    slug = create_show(srv.url)
    made = Clients(srv)
    try:
        phones = [await made.audience(slug) for _ in range(12)]
        overlay = await made.overlay(slug)
        for phone in phones:
            await phone.send({"type": "like", "side": "a", "count": 1})
        await overlay.wait_for(lambda f: f["type"] == "tally" and f["likes"]["a"] == 12)

        def scrape() -> str:
            with httpx.Client() as http:  # a new connection each time: any worker may answer
                return http.get(f"{srv.url}/metrics").text

        def summed() -> bool:
            text = scrape()
            return (
                figure(text, "leitai_metrics_processes") == 2
                and figure(text, 'leitai_sockets{role="audience"}') == 12
                and figure(text, 'leitai_sockets{role="overlay"}') == 1
                and figure(text, "leitai_likes_total") == 12
            )

        await wait_until(summed, timeout=10, interval=0.2)
        for _ in range(6):  # every answer, from either worker, is the sum
            text = scrape()
            assert figure(text, 'leitai_sockets{role="audience"}') == 12
            assert figure(text, "leitai_metrics_processes") == 2
            assert figure(text, 'leitai_frames_in_total{role="audience"}') >= 24  # hello and a like each
            assert 'leitai_tick_seconds_bucket{le="+Inf"}' in text
    finally:
        await made.close()
