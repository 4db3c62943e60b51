"""The Starlette application: pages, API, sockets. `create_app(settings)` assembles it."""

import asyncio
import contextlib
import gc
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import orjson
import segno
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.websockets import WebSocket

from . import protocol
from .auth import DEVICE_COOKIE, SESSION_COOKIE, Auth
from .demo import ensure_demo
from .domain import DomainError
from .domain.ratelimit import TokenBucket
from .domain import show as dshow
from .hub import Conn
from .i18n import translator
from .metrics import STATS, Metrics
from .node import Node, device_hash, now_ms
from .protocol import ProtocolError
from .settings import Settings
from .store import Conflict, StoreUnavailable, make_store
from .wordfilter import WordFilter

log = logging.getLogger("leitai")

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "overlay"
TEMPLATES = Path(__file__).resolve().parent / "templates"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self' ws: wss:; font-src 'self' data:; frame-ancestors 'none'; "
       "base-uri 'none'; form-action 'self'")
WIDGETS = ("pk", "timer", "likes", "question", "viewers", "qr")
DEFAULT_WIDGETS = ("pk", "timer", "likes", "question", "viewers")


class SecurityHeaders:
    """CSP and friends on every HTTP response."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers += [(b"content-security-policy", CSP.encode()),
                            (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer")]
            await send(message)

        await self.app(scope, receive, send_with_headers)


@dataclass(frozen=True)
class Leitai:
    """What route modules (e.g. producer.py) reach through `request.app.state.leitai`."""

    settings: Settings
    store: Any
    node: Node
    auth: Auth
    render: Callable[..., Response]  # render(request, "page.html", **context)
    signed_in: Callable[[Request], bool]


class Static(StaticFiles):
    """Static files that browsers revalidate (a cheap 304): an OBS overlay that runs
    for days never mixes old and new modules after a deploy."""

    def file_response(self, *args, **kwargs) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


class SocketsFirst:
    """The ASGI app: WebSocket scopes go to the socket entry, the rest to Starlette."""

    def __init__(self, app: Starlette, sockets) -> None:
        self.app, self.sockets = app, sockets

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "websocket":
            await self.sockets(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    @property
    def state(self):
        return self.app.state


def language(request: Request) -> str:
    lang = request.query_params.get("lang")
    if lang:
        return "en" if lang.lower().startswith("en") else "zh-CN"
    accept = request.headers.get("accept-language", "")
    first = accept.split(",")[0].strip().lower()
    return "en" if first.startswith("en") else "zh-CN"


def create_app(settings: Settings | None = None) -> SocketsFirst:
    settings = settings or Settings.from_env()
    store = make_store(settings)
    node = Node(settings, store)
    metrics = Metrics(node)
    node.metrics = metrics
    auth = Auth(settings.resolved_secret(), settings.host_token, settings.session_max_age_s,
                settings.allowed_origins)
    templates = Jinja2Templates(directory=str(TEMPLATES))
    version = str(int(time.time()))
    node.wordfilter = WordFilter.default().flagged

    cookie_buckets: dict[str, TokenBucket] = {}
    sockets_by_ip: dict[str, int] = {}

    def may_issue_device(ip: str) -> bool:
        """New device cookies per IP per minute: generous, so one carrier NAT is not one phone."""
        per_min = settings.devices_per_ip_per_min
        if per_min <= 0:
            return True
        if len(cookie_buckets) > 100_000:
            cookie_buckets.clear()
        bucket = cookie_buckets.setdefault(ip, TokenBucket(per_min / 60, per_min))
        return bucket.take(time.monotonic()) == 0

    def client_ip(conn_scope) -> str:
        client = conn_scope.get("client") or ("", 0)
        return client[0]

    def render(request: Request, name: str, **context) -> Response:
        lang = language(request)
        context.update(lang=lang, t=translator(lang), v=version,
                       public_url=settings.public_url.rstrip("/") or str(request.base_url).rstrip("/"))
        return templates.TemplateResponse(request, name, context)

    def signed_in(request: Request) -> bool:
        return auth.session_age(request.cookies.get(SESSION_COOKIE)) is not None

    def secure(request: Request) -> bool:
        return request.url.scheme == "https"

    # -- pages -------------------------------------------------------------------

    async def audience_page(request: Request) -> Response:
        rt = await node.runtime(request.path_params["show"])
        if rt is None:
            return PlainTextResponse("unknown show", status_code=404)
        if auth.device(request.cookies.get(DEVICE_COOKIE)) is None:
            if not may_issue_device(client_ip(request.scope)):
                return PlainTextResponse("太多新设备，请稍后再试 / Too many new devices from this network; "
                                         "try again in a minute.", status_code=429,
                                         headers={"Retry-After": "60"})
            _, cookie = auth.new_device()
            response = render(request, "audience.html", slug=rt.state.slug, title=rt.state.title)
            response.set_cookie(DEVICE_COOKIE, cookie, max_age=settings.device_max_age_s,
                                httponly=True, samesite="lax", secure=secure(request))
            return response
        return render(request, "audience.html", slug=rt.state.slug, title=rt.state.title)

    async def overlay_page(request: Request) -> Response:
        rt = await node.runtime(request.path_params["show"])
        if rt is None:
            return PlainTextResponse("unknown show", status_code=404)
        q = request.query_params
        widgets = [w for w in q.get("widgets", ",".join(DEFAULT_WIDGETS)).split(",") if w in WIDGETS]
        try:
            scale = min(4.0, max(0.25, float(q.get("scale", "1"))))
        except ValueError:
            scale = 1.0
        position = q.get("position", "bottom") if q.get("position") in ("top", "bottom") else "bottom"
        return render(request, "overlay.html", slug=rt.state.slug, title=rt.state.title,
                      widgets=widgets, debug=q.get("debug") == "1", scale=scale, position=position)

    async def console_page(request: Request) -> Response:
        slug = request.path_params["show"]
        if not signed_in(request):
            return RedirectResponse(f"/login?next=/console/{slug}", status_code=303)
        rt = await node.runtime(slug)
        if rt is None:
            return PlainTextResponse("unknown show", status_code=404)
        return render(request, "console.html", slug=rt.state.slug, title=rt.state.title)

    def safe_next(value: str | None) -> str:
        if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
            return value
        return "/shows"

    async def login_form(request: Request) -> Response:
        return render(request, "login.html", next=safe_next(request.query_params.get("next")),
                      error=request.query_params.get("error") == "1", slug="", title="")

    async def login(request: Request) -> Response:
        if not auth.origin_ok(request.headers, request.url.scheme):
            return PlainTextResponse("cross-site sign-in refused", status_code=403)
        form = await request.form()
        next_url = safe_next(str(form.get("next", "")))
        if not auth.check_token(str(form.get("token", ""))):
            return RedirectResponse(f"/login?error=1&next={next_url}", status_code=303)
        response = RedirectResponse(next_url, status_code=303)
        response.set_cookie(SESSION_COOKIE, auth.new_session(), max_age=settings.session_max_age_s,
                            httponly=True, samesite="lax", secure=secure(request))
        return response

    async def logout(request: Request) -> Response:
        if not auth.origin_ok(request.headers, request.url.scheme):
            return PlainTextResponse("cross-site sign-out refused", status_code=403)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    async def index(request: Request) -> Response:
        return RedirectResponse("/shows" if signed_in(request) else "/s/demo", status_code=303)

    # -- API ---------------------------------------------------------------------

    async def api_show(request: Request) -> Response:
        rt = await node.runtime(request.path_params["show"])
        if rt is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        state = rt.state
        now = now_ms()
        body = {"type": "snapshot", "seq": state.pseq, "role": "overlay", "server_time": now,
                "show": state.view(now, console=False)}
        return Response(orjson.dumps(body), media_type="application/json")

    async def api_create(request: Request) -> Response:
        if not auth.origin_ok(request.headers, request.url.scheme):
            return JSONResponse({"error": "forbidden", "message": "origin not allowed"}, status_code=403)
        if not signed_in(request):
            return JSONResponse({"error": "forbidden", "message": "sign in first"}, status_code=401)
        try:
            data = orjson.loads(await request.body())
            if not isinstance(data, dict):
                raise DomainError("invalid", "expected a JSON object")
            state = dshow.new_show(
                data.get("slug") if isinstance(data.get("slug"), str) else "",
                data.get("title") if isinstance(data.get("title"), str) else "",
                data.get("sides"), data.get("plan") or [],
                data.get("date") if isinstance(data.get("date"), str) else "",
                now_ms(), data.get("status", "draft"))
            await store.create_show(state)
        except orjson.JSONDecodeError:
            return JSONResponse({"error": "invalid", "message": "not JSON"}, status_code=400)
        except DomainError as exc:
            return JSONResponse({"error": exc.code, "message": exc.message}, status_code=400)
        except Conflict:
            return JSONResponse({"error": "conflict", "message": "that slug is taken"}, status_code=409)
        except StoreUnavailable:
            return JSONResponse({"error": "unavailable"}, status_code=503)
        return JSONResponse({"slug": state.slug}, status_code=201)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def metrics_page(request: Request) -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def qr_code(request: Request) -> Response:
        """The audience page's address as an SVG QR code, for the overlay and the console."""
        slug = request.path_params["show"]
        if await node.runtime(slug) is None:
            return PlainTextResponse("unknown show", status_code=404)
        base = settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
        buf = io.BytesIO()
        segno.make(f"{base}/s/{slug}", error="m").save(buf, kind="svg", scale=8, border=2,
                                                      dark="#111111", light="#ffffff", xmldecl=False)
        return Response(buf.getvalue(), media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=300"})

    async def readyz(request: Request) -> Response:
        ok = await store.ready()
        return PlainTextResponse("ready" if ok else "store unavailable", status_code=200 if ok else 503)

    # -- sockets -----------------------------------------------------------------

    async def refuse(ws: WebSocket, code: int) -> None:
        await ws.accept()
        await ws.close(code)

    async def socket(ws: WebSocket, role: str, slug: str, receive) -> None:
        scheme = "https" if ws.url.scheme == "wss" else "http"
        if not auth.origin_ok(ws.headers, scheme):
            return await refuse(ws, 4403)
        try:
            rt = await node.runtime(slug)
        except StoreUnavailable:
            return await refuse(ws, 1013)  # try again later
        if rt is None:
            return await refuse(ws, 4404)
        device = dhash = ""
        session_left = None
        if role == "audience":
            device = auth.device(ws.cookies.get(DEVICE_COOKIE)) or ""
            if not device:
                return await refuse(ws, 4401)
            dhash = device_hash(device)
            mates = rt.room.by_device.get(dhash)
            if settings.sockets_per_device and mates and len(mates) >= settings.sockets_per_device:
                return await refuse(ws, 1008)
        elif role == "console":
            session_left = auth.session_age(ws.cookies.get(SESSION_COOKIE))
            if session_left is None:
                return await refuse(ws, 4401)
        ip = client_ip(ws.scope)
        if settings.sockets_per_ip and sockets_by_ip.get(ip, 0) >= settings.sockets_per_ip:
            return await refuse(ws, 1008)
        await ws.accept()
        sockets_by_ip[ip] = sockets_by_ip.get(ip, 0) + 1
        conn = Conn(ws, role, slug, settings.client_buffer_bytes, device, dhash, ip,
                    settings.socket_sndbuf)
        expiry = None
        if session_left is not None:  # the console closes with 4401 when the session ends
            expiry = asyncio.get_running_loop().call_later(
                session_left, lambda: asyncio.ensure_future(conn.close(4401)))
        await node.join(rt, conn)
        try:
            await serve_socket(receive, rt, conn)
        finally:
            node.leave(rt, conn)
            if expiry is not None:
                expiry.cancel()
            left = sockets_by_ip.get(ip, 1) - 1
            if left:
                sockets_by_ip[ip] = left
            else:
                sockets_by_ip.pop(ip, None)

    async def serve_socket(receive, rt, conn: Conn) -> None:
        """The read loop: the server's own `receive` (no per-frame Starlette state checks)."""
        max_bytes = settings.max_frame_bytes
        frames_in = STATS.frames_in
        loop = asyncio.get_running_loop()
        timeout = settings.first_message_timeout_s if conn.role != "overlay" else 0
        deadline = loop.time() + timeout
        while True:
            if timeout and not conn.valid_seen:
                # phones and consoles say something valid (at least "hello") soon after
                # connecting; a socket that only holds a slot is closed
                try:
                    message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
                except asyncio.TimeoutError:
                    await conn.close(1008)
                    return
            else:
                message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                data = message.get("bytes") or b""
                if len(data) > max_bytes:
                    await conn.close(1009)
                    return
                conn.send(protocol.error("invalid", "binary frames are not accepted"))
                STATS.errors["invalid"] += 1
                continue
            if len(text) > max_bytes or (len(text) * 3 > max_bytes and len(text.encode()) > max_bytes):
                await conn.close(1009)
                return
            frames_in[conn.role] += 1
            try:
                msg = protocol.parse(text, conn.role)
            except ProtocolError as exc:
                conn.send(exc.frame())
                STATS.errors[exc.code] += 1
                continue
            conn.valid_seen = True
            reply = await node.handle(rt, conn, msg)
            if reply is None:
                conn.strikes = 0
                continue
            conn.send(reply)
            if reply.startswith(b'{"type":"error","code":"rate_limited"'):
                conn.strikes += 1
                if conn.strikes > settings.flood_strikes:
                    await conn.close(1008)  # sustained flooding
                    return
            else:
                conn.strikes = 0

    # -- life --------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await node.start()
        await ensure_demo(store, settings)
        # Fewer, later collections: with 10,000 sockets the default thresholds ran the
        # collector for a third of the busy time and stalled ticks (docs/performance.md).
        # Everything allocated at start-up is frozen out of the collector's view.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*settings.gc_thresholds)
        try:
            yield
        finally:
            await node.stop()

    routes = [
        Route("/", index),
        Route("/s/{show}", audience_page),
        Route("/overlay/{show}", overlay_page),
        Route("/console/{show}", console_page),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/api/shows", api_create, methods=["POST"]),
        Route("/api/shows/{show}", api_show),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_page),
        Route("/qr/{show}.svg", qr_code),
        Mount("/static", Static(directory=str(STATIC), check_dir=False), name="static"),
    ]
    from .producer import routes as producer_routes

    routes[-1:-1] = producer_routes()
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(SecurityHeaders)
    app.state.node = node
    app.state.settings = settings
    app.state.leitai = Leitai(settings, store, node, auth, render, signed_in)

    async def websocket_entry(scope, receive, send) -> None:
        """Sockets skip Starlette's middleware, so `send` stays the server's own and
        the hub can write pre-framed bytes straight to its transport."""
        parts = scope["path"].split("/")
        ws = WebSocket(scope, receive, send)
        if len(parts) != 4 or parts[1] != "ws" or parts[2] not in ("audience", "overlay", "console"):
            return await refuse(ws, 4404)
        await socket(ws, parts[2], parts[3], receive)

    return SocketsFirst(app, websocket_entry)
