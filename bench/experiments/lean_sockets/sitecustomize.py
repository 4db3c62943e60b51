"""Experiment (issue 17, memory per idle phone): uvicorn's WebSocket protocol with a
lean incoming queue and a lean `writable` event, applied to a running server without
editing `server/` (since ported: `EdgeWebSocketProtocol` and `LEAN` in server/edge.py,
`forget_admission` at the end of `SocketServer._admit`; docs/performance.md):

    scripts/bench --servers leitai --server-env PYTHONPATH=bench/experiments/lean_sockets:.
    .venv/bin/python -m bench.memprobe --servers leitai --also bench/experiments/lean_sockets

Per socket, uvicorn's `WebSocketsSansIOProtocol` makes an `asyncio.Queue` (three
deques, and an `Event` with a fourth) and an `asyncio.Event` (a fifth); an empty
`collections.deque` is 760 bytes. The stand-ins below hold a list and a future
only while something waits. Only what uvicorn calls is implemented:
`put_nowait`, `get`, `empty` and `set`, `clear`, `is_set`, `wait`.

With `LEAN_SCOPE=1` also: once a socket is admitted (`SocketServer._admit`), drop
what Starlette's `WebSocket` cached while admitting it (`_url`, `_headers`,
`_cookies`, `_query_params`) and the scope's header list, which nothing reads
after admission. (A measurement only: in `server/` this belongs at the end of
`_admit`, with a test that nothing later needs the headers.)
"""

import asyncio
import os

from uvicorn.protocols.websockets import websockets_sansio_impl as _impl


class LeanQueue:
    """A single-consumer queue: a list only while items wait, a future only while the reader does."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list | None = None
        self._waiter: asyncio.Future | None = None

    def put_nowait(self, item) -> None:
        if self._items is None:
            self._items = [item]
        else:
            self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self):
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        items = self._items
        item = items.pop(0)
        if not items:
            self._items = None
        return item

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0


class LeanEvent:
    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        self._value = True
        waiters, self._waiters = self._waiters, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_result(True)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        fut = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(fut)
        return await fut


_init = _impl.WebSocketsSansIOProtocol.__init__


def __init__(self, *args, **kwargs) -> None:
    _init(self, *args, **kwargs)
    self.queue = LeanQueue()
    writable = LeanEvent()
    writable.set()
    self.writable = writable


_impl.WebSocketsSansIOProtocol.__init__ = __init__


if os.environ.get("LEAN_SCOPE"):
    from server.web import sockets as _sockets

    _admit = _sockets.SocketServer._admit

    async def _lean_admit(self, ws, role, slug):
        admitted = await _admit(self, ws, role, slug)
        for name in ("_url", "_base_url", "_headers", "_cookies", "_query_params"):
            ws.__dict__.pop(name, None)
        ws.scope["headers"] = []
        return admitted

    _sockets.SocketServer._admit = _lean_admit
