"""The lean per-socket objects (issue 17, ≤ 18 KiB per idle phone; server/edge.py)
and what admission lets go of (server/web/sockets.py)."""

import asyncio
import collections
import gc

from starlette.websockets import WebSocket

from server.edge import LEAN, EdgeWebSocketProtocol, Lean, LeanEvent, LeanQueue
from server.web.sockets import forget_admission


def deques() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is collections.deque)


async def test_the_lean_queue_keeps_order_and_wakes_its_reader():
    q = LeanQueue()
    assert q.empty() and q.qsize() == 0
    for i in range(3):
        q.put_nowait(i)
    assert q.qsize() == 3
    assert [await q.get() for _ in range(3)] == [0, 1, 2]
    assert q.empty()

    reader = asyncio.create_task(q.get())
    await asyncio.sleep(0)  # let it wait: nothing is queued
    assert not reader.done()
    q.put_nowait("hello")
    q.put_nowait("again")
    assert await asyncio.wait_for(reader, 5) == "hello"
    assert await asyncio.wait_for(q.get(), 5) == "again"
    assert q._items is None and q._waiter is None  # nothing held once idle again


async def test_idle_lean_objects_hold_no_deque():
    before = deques()
    held = [asyncio.Queue() for _ in range(100)]
    assert deques() - before >= 100  # the measure sees asyncio's deques
    del held
    before = deques()
    queues = [LeanQueue() for _ in range(100)]
    events = [LeanEvent() for _ in range(100)]
    for q in queues:  # used, then idle
        q.put_nowait(1)
        await q.get()
    for e in events:
        e.set()
        await e.wait()
        e.clear()
    assert deques() - before <= 0


async def test_the_lean_event_wakes_its_waiters():
    e = LeanEvent()
    assert not e.is_set()
    waiters = [asyncio.create_task(e.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    e.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 5) == [True, True]
    assert e.is_set() and await e.wait()
    e.clear()
    assert not e.is_set() and e._waiters is None


async def test_the_installed_uvicorn_takes_the_lean_objects():
    """The start-up check passes on the pinned uvicorn, and a socket's protocol then holds them."""
    import uvicorn
    from uvicorn.server import ServerState

    assert Lean().check().on

    async def app(scope, receive, send):
        pass

    config = uvicorn.Config(app=app, ws="websockets-sansio", log_config=None)
    was, LEAN.on = LEAN.on, True
    try:
        proto = EdgeWebSocketProtocol(config, ServerState(), {})
    finally:
        LEAN.on = was
    assert type(proto.queue) is LeanQueue
    assert type(proto.writable) is LeanEvent and proto.writable.is_set()


def test_admission_caches_are_dropped():
    scope = {
        "type": "websocket",
        "path": "/ws/audience/demo",
        "query_string": b"since=3&epoch=e",
        "headers": [(b"host", b"example.org"), (b"cookie", b"leitai_device=x"), (b"origin", b"http://example.org")],
        "server": ("example.org", 80),
    }

    async def receive():
        return {}

    async def send(message):
        pass

    ws = WebSocket(scope, receive, send)
    assert ws.query_params["since"] == "3" and ws.cookies and ws.headers["origin"] and ws.url.path
    forget_admission(ws)
    assert not {"_url", "_base_url", "_headers", "_cookies", "_query_params"} & set(vars(ws))
    assert ws.scope["headers"] == []


async def test_an_unexpected_uvicorn_keeps_its_own_objects_and_says_so(monkeypatch, caplog):
    """If uvicorn's protocol calls anything the lean objects lack, they are not used: warned, never silent."""
    import uvicorn
    from uvicorn.server import ServerState

    from server import edge

    monkeypatch.setitem(edge._USES, "queue", {"put_nowait", "get"})  # as if uvicorn now called .empty() anew
    lean = Lean().check()
    assert not lean.on and "empty" in lean.reason
    assert any(r.levelname == "WARNING" and "NOT the lean ones" in r.getMessage() for r in caplog.records)

    async def app(scope, receive, send):
        pass

    monkeypatch.setattr(LEAN, "on", lean.on)  # what the start-up check would have set
    proto = EdgeWebSocketProtocol(uvicorn.Config(app=app, ws="websockets-sansio", log_config=None), ServerState(), {})
    assert type(proto.queue) is asyncio.Queue and type(proto.writable) is asyncio.Event
