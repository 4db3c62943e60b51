"""JSON routes and the operator's endpoints (health, readiness, metrics)."""

import secrets

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..domain import DomainError
from ..domain import show as dshow
from ..node import Conflict, StoreUnavailable, now_ms, snapshot
from .context import leitai


def json_error(status: int, error: str, message: str = "", **extra: object) -> Response:
    body: dict = {"error": error, **({"message": message} if message else {}), **extra}
    return JSONResponse(body, status_code=status)


async def show_snapshot(request: Request) -> Response:
    """The same snapshot an overlay socket gets on connect."""
    rt = await leitai(request).runtime(request, request.path_params["show"])
    if rt is None:
        return json_error(404, "not_found")
    s = leitai(request).settings
    frame = snapshot(rt.state, "overlay", page=s.snapshot_questions, queue_max=s.console_queue_max)
    return Response(orjson.dumps(frame), media_type="application/json")


async def create_show(request: Request) -> Response:
    lt = leitai(request)
    if not lt.auth.origin_ok(request):
        return json_error(403, "forbidden", "origin not allowed")
    if not lt.signed_in(request):
        return json_error(401, "forbidden", "sign in first")
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return json_error(400, "invalid", "not JSON")
    if not isinstance(data, dict):
        return json_error(400, "invalid", "expected a JSON object")
    try:
        sides = await lt.node.season.with_guests(data.get("sides"))  # a side's "guest_id": from the roster
        state = dshow.new_show(
            data.get("slug", ""),
            data.get("title", ""),
            sides,
            data.get("plan") or [],
            data.get("date", ""),
            now_ms(),
            data.get("status", "draft"),
            lt.settings.text_limits,
            overlay_key=secrets.token_urlsafe(12),
            lang=data.get("lang", dshow.SHOW_LANGS[0]),
        )
        await lt.node.create_show(state)
    except DomainError as exc:
        return json_error(400, exc.code, exc.message, **({"fields": {exc.field: exc.message}} if exc.field else {}))
    except Conflict:
        return json_error(409, "conflict", "that slug is taken")
    except StoreUnavailable:
        return json_error(503, "unavailable")
    return JSONResponse({"slug": state.slug}, status_code=201)


async def overlay_url(request: Request) -> Response:
    """The keyed overlay address of a show, for OBS (signed in): overlays on it count
    as the studio's screens."""
    lt = leitai(request)
    if not lt.signed_in(request):
        return json_error(401, "forbidden", "sign in first")
    rt = await lt.node.runtime(request.path_params["show"])
    if rt is None:
        return json_error(404, "not_found")
    key = rt.state.overlay_key
    url = f"{lt.public_url(request)}/overlay/{rt.state.slug}" + (f"?key={key}" if key else "")
    return JSONResponse({"url": url, "key": key})


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    problem = await leitai(request).node.problem()
    return PlainTextResponse(problem or "ready", status_code=503 if problem else 200)


async def metrics(request: Request) -> Response:
    return Response(await leitai(request).metrics.render_all(), media_type="text/plain; version=0.0.4; charset=utf-8")


routes = [
    Route("/api/shows", create_show, methods=["POST"]),
    Route("/api/shows/{show}", show_snapshot),
    Route("/api/shows/{show}/overlay-url", overlay_url),
    Route("/healthz", healthz),
    Route("/readyz", readyz),
    Route("/metrics", metrics),
]
