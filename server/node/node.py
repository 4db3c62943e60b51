"""The node: one process's view of every show it serves (the composition root).

`Replicas` keeps each show's state and its local sockets, `Handlers` turns
client messages into store calls and typed replies, `Commands` decides and
commits host and producer actions, `Ticker` flushes likes and sends tallies.
The web edge talks to the node only.
"""

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import Any

from ..domain import DomainError
from ..domain.show import ShowState
from ..hub import Conn
from ..protocol import Message, Reply
from ..settings import Settings
from ..store import Store, StoreUnavailable
from .commands import Commands
from .handlers import Handlers
from .replica import Replicas, Runtime
from .season import Season, make_season_store
from .tasks import Tasks
from .ticker import Ticker
from .venues import Venues

log = logging.getLogger("leitai.node")


def device_hash(device: str) -> str:
    """The short id a device is known by in the store, in moderation and in bans."""
    return hashlib.sha256(device.encode()).hexdigest()[:12]


class Node:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        flagged: Callable[[str], bool] | None = None,
        observe_tick: Callable[[float], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.tasks = Tasks()
        groups = max(1, round(settings.phone_tick_ms / settings.tick_ms))
        self.venues = Venues(settings)
        self.replicas = Replicas(
            store, groups, self.tasks, self.venues, int(settings.vote_min_watch_s * 1000), settings.resume_frames
        )
        self.commands = Commands(store, settings.text_limits)
        self.handlers = Handlers(settings, store, self.commands, self.venues, flagged)
        self.ticker = Ticker(settings, store, self.replicas, observe_tick)
        self._tick_task: asyncio.Task[Any] | None = None
        # the season beyond the hour: roster, polls, talk requests (node/season.py)
        self.season = Season(settings, make_season_store(settings), store, self.venues, self.tasks)

    @property
    def shows(self) -> dict[str, Runtime]:
        return self.replicas.shows

    # -- life ------------------------------------------------------------------

    async def start(self) -> None:
        await self.store.start()
        await self.season.start()
        self._tick_task = self.tasks.spawn(self.ticker.run(), "leitai-tick")

    async def stop(self) -> None:
        """Flush likes, close every socket with 1012, end every task, close the store."""
        if self._tick_task is not None:
            self._tick_task.cancel()
            await asyncio.gather(self._tick_task, return_exceptions=True)
        try:
            await self.ticker.tick(final=True)
        except Exception:
            log.exception("final flush failed")
        for rt in self.shows.values():
            for conn in rt.room.all():
                await conn.close(1012)
        await self.tasks.cancel()
        await self.season.stop()
        await self.store.close()

    # -- sockets ---------------------------------------------------------------

    async def runtime(self, slug: str) -> Runtime | None:
        return await self.replicas.get(slug)

    async def connect_wait(self, slug: str, device: str) -> float:
        """A device's budget of new sockets on a show, kept by the store (so a script that
        hops between processes gets one device's): 0, or the seconds to wait."""
        s = self.settings
        return await self.store.take(slug, device, "connect", s.connect_rate, s.connect_burst)

    async def join(self, rt: Runtime, conn: Conn) -> None:
        await self.replicas.join(rt, conn)

    def leave(self, rt: Runtime, conn: Conn) -> None:
        self.replicas.leave(rt, conn)
        if conn.role == "console" and conn.holder in rt.desk:  # the others see this moderator go
            self.tasks.spawn(self._left(rt, conn), "desk-left")

    async def _left(self, rt: Runtime, conn: Conn) -> None:
        try:
            await self.handlers.focus(rt, conn, None, left=True)
        except StoreUnavailable:
            pass

    async def handle(self, rt: Runtime, conn: Conn, msg: Message) -> Reply | None:
        return await self.handlers.handle(rt, conn, msg)

    # -- producers -------------------------------------------------------------

    async def _known(self, slug: str) -> Runtime:
        rt = await self.runtime(slug)
        if rt is None:
            raise DomainError("not_found", f"no show {slug}")
        return rt

    async def create_show(self, state: ShowState) -> None:
        await self.store.create_show(state)

    async def edit_show(self, slug: str, changes: dict[str, Any]) -> None:
        await self.commands.edit_show(await self._known(slug), changes)

    async def rehearsal_reset(self, slug: str) -> None:
        await self.commands.rehearsal_reset(await self._known(slug))

    async def list_shows(self) -> list[str]:
        return await self.store.list_shows()

    async def read(self, slug: str) -> ShowState | None:
        """The show as the store has it now, with its counters and stances (for reports)."""
        state = await self.store.load(slug)
        if state is not None:
            state.counters.stance = await self.store.stance_counts(slug)
        return state

    async def timeline(self, slug: str) -> list[dict[str, Any]]:
        return await self.store.timeline(slug)

    async def ready(self) -> bool:
        return not await self.problem()

    async def problem(self) -> str:
        """Why the store cannot read and write now ("" when it can); /readyz says it."""
        return await self.store.problem()
