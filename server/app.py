"""`create_app(settings)`: the application assembled from its parts (routes,
middleware, lifespan), and nothing else."""

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from .demo import ensure_demo
from .edge import LEAN
from .edge import LIMITS as EDGE
from .metrics import Metrics
from .node import Node
from .settings import Settings
from .store import StoreUnavailable, make_store
from .transport import FastPath
from .web import api, devices, pages, producer, season
from .web.context import Leitai
from .web.security import Auth, SecurityHeaders
from .web.sessions import Sessions
from .web.sockets import SocketServer
from .wordfilter import WordFilter

log = logging.getLogger("leitai")

STATIC = Path(__file__).resolve().parent.parent / "overlay"


class Static(StaticFiles):
    """Static files that browsers revalidate (a cheap 304): an OBS overlay that runs
    for days never mixes old and new modules after a deploy."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


class SocketsFirst:
    """The ASGI app: WebSocket scopes go to the socket edge, the rest to Starlette.
    Sockets skip Starlette's middleware, so `send` stays the server's own and the
    hub can write pre-framed bytes straight to its transport."""

    def __init__(self, app: Starlette, sockets: SocketServer) -> None:
        self.app, self.sockets = app, sockets

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await self.sockets(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    @property
    def state(self) -> Any:
        return self.app.state


def collect_less(settings: Settings) -> None:
    """Fewer, later collections: with 10,000 sockets the default thresholds ran the
    collector for a third of the busy time and stalled ticks (docs/performance.md).
    Everything allocated at start-up is frozen out of the collector's view."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*settings.gc_thresholds)


def create_app(settings: Settings | None = None) -> SocketsFirst:
    settings = settings or Settings.from_env()
    EDGE.configure(settings)  # the connection limits of this process's protocols (server/edge.py)
    store = make_store(settings)
    metrics: Metrics | None = None
    node = Node(
        settings,
        store,
        WordFilter.default().flagged,
        observe_tick=lambda seconds: metrics.tick_seconds.observe(seconds) if metrics else None,
    )
    fast_path = FastPath()
    metrics = Metrics(node, fast_path, settings.workers)
    auth = Auth(
        settings.resolved_secret(),
        settings.resolved_host_token(),
        settings.session_max_age_s,
        settings.allowed_origins,
        settings.public_url,
        settings.allowed_hosts,
    )
    lt = Leitai(settings, node, auth, fast_path, metrics)
    lt.sessions = Sessions(settings, node.season.store, node.store)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        fast_path.check()
        LEAN.check()  # the lean per-socket queue and event (server/edge.py), or uvicorn's own: logged
        await node.start()
        metrics.start_sharing(node.tasks)  # WORKERS > 1: every worker's figures in every /metrics
        await lt.sessions.load()
        node.tasks.spawn(lt.sessions.watch(), "sessions")
        try:
            await ensure_demo(node.store, settings, node.season)
        except StoreUnavailable as exc:  # serve on: /readyz and the log say why
            log.error("the demo show was not made: %s", exc)
        collect_less(settings)
        try:
            yield
        finally:
            await node.stop()

    app = Starlette(
        routes=[
            *pages.routes,
            *api.routes,
            *devices.routes,
            *producer.routes,
            *season.routes,
            Mount("/static", Static(directory=str(STATIC), check_dir=False), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders)],
        lifespan=lifespan,
    )
    app.state.leitai = lt
    return SocketsFirst(app, SocketServer(lt))
