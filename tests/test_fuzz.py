"""Property: random frames at each role never crash the server, are answered with
an error when invalid, and change the show's state only when they are valid commands."""

import contextlib
import json
import time

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from websockets.sync.client import connect

from conftest import Server, create_show, device_cookie, host_cookies
from server import protocol

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)
FIELDS = ("side", "count", "text", "name", "question", "topic", "duration_s", "points", "device", "id")
VALUES = {
    "side": st.sampled_from(["a", "b", "c", "", None, 1]),
    "count": st.integers(-5, 60) | JSONISH,
    "question": st.sampled_from(["q1", "q2", "q999", "", None]) | JSONISH,
    "duration_s": st.integers(0, 9000) | JSONISH,
    "points": st.integers(-3, 10_001) | JSONISH,
}
MESSAGES = st.builds(
    lambda kind, fields: {"type": kind, **fields},
    st.sampled_from(list(protocol.CLIENT_TYPES) + ["dance", "", "LIKE"]) | JSONISH,
    st.dictionaries(st.sampled_from(FIELDS), JSONISH, max_size=4).flatmap(
        lambda d: st.fixed_dictionaries({k: VALUES.get(k, st.just(v)) for k, v in d.items()})))
FRAMES = (MESSAGES.map(lambda m: orjson.dumps(m).decode())
          | st.text(max_size=200)
          | st.binary(max_size=100)
          | JSONISH.map(lambda v: json.dumps(v)))


@pytest.fixture(scope="module")
def fuzz_server():
    srv = Server(LIKE_RATE="100000", LIKE_BURST="100000", VOTE_RATE="100000", VOTE_BURST="100000",
                 UPVOTE_RATE="100000", UPVOTE_BURST="100000", CONSOLE_RATE="100000",
                 CONSOLE_BURST="100000", QUESTION_INTERVAL_S="0.00001", FLOOD_STRIKES="100000000").start()
    yield srv
    srv.cleanup()


@pytest.fixture(scope="module")
def sockets(fuzz_server):
    slug = create_show(fuzz_server.url)
    cookies = {"audience": f"lt_device={device_cookie(fuzz_server.url, slug)}",
               "console": f"lt_session={host_cookies(fuzz_server.url)['lt_session']}", "overlay": ""}
    made = {}
    with contextlib.ExitStack() as stack:
        for role, cookie in cookies.items():
            ws = stack.enter_context(connect(f"{fuzz_server.ws_url}/ws/{role}/{slug}", compression=None,
                                             additional_headers={"Cookie": cookie} if cookie else {}))
            assert orjson.loads(ws.recv(5))["type"] == "snapshot"
            made[role] = ws
        yield fuzz_server, slug, made


def fingerprint(srv: Server, slug: str, console) -> tuple:
    show = httpx.get(f"{srv.url}/api/shows/{slug}").json()
    t = show["show"]["tally"]
    return show["seq"], t["likes"], t["votes"], t["points"], show["show"]["round"]["status"]


def settled(srv, slug, console) -> tuple:
    """The state once pending likes have been flushed by the tick."""
    last = fingerprint(srv, slug, console)
    while True:
        time.sleep(0.25)
        now = fingerprint(srv, slug, console)
        if now == last:
            return now
        last = now


_n = iter(range(10**9))


def exchange(ws, frame) -> list[dict]:
    """Send a frame and a sentinel; return every reply that came before the sentinel's ack."""
    ws.send(frame)
    sentinel = f"sentinel-{next(_n)}"
    ws.send(orjson.dumps({"type": "hello", "id": sentinel}).decode())  # overlays answer it "forbidden"
    replies = []
    while True:
        msg = orjson.loads(ws.recv(5))
        if msg.get("id") == sentinel:
            return replies
        if msg["type"] in ("ack", "error"):
            replies.append(msg)


@pytest.mark.parametrize("role", ["audience", "console", "overlay"])
def test_random_frames(sockets, role):
    srv, slug, made = sockets
    ws = made[role]
    state = {"base": settled(srv, slug, made["console"])}

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(frame=FRAMES)
    def check(frame):
        try:
            valid = protocol.parse(frame, role) if isinstance(frame, str) else None
        except protocol.ProtocolError:
            valid = None
        replies = exchange(ws, frame)
        if valid is None:
            assert replies and all(r["type"] == "error" for r in replies), (frame, replies)
            assert {r["code"] for r in replies} <= set(protocol.ERROR_CODES)
            assert fingerprint(srv, slug, made["console"]) == state["base"], frame
        else:
            state["base"] = settled(srv, slug, made["console"])

    check()
    # still open and serving
    last = exchange(ws, orjson.dumps({"type": "hello", "id": "last"}).decode())
    assert last == ([{"type": "ack", "id": "last"}] if role != "overlay" else
                    [{"type": "error", "id": "last", "code": "forbidden", "message": last[0]["message"]}])
