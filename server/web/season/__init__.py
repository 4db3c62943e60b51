"""The season beyond the hour, at the edge: the roster (`guests`), season polls
(`polls`), talk requests and talks (`talks`), and the audience's path after an
episode. Routes and JSON: docs/season.md (the SPEC's section "The season")."""

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..context import leitai
from . import guests, polls, talks
from .common import api, error, json, season


@api()
async def after(request: Request) -> Response:
    """GET /api/season/after/{show}: what a phone shows once the episode has ended (its
    result, the next episode, the open poll, the roster). Public: no contact data."""
    if await leitai(request).runtime(request, request.path_params["show"]) is None:
        return error(404, "not_found")  # unknown, or a draft (not public)
    data = await season(request).after(request.path_params["show"])
    return json(data, cache="public, max-age=5") if data else error(404, "not_found")


@api()
async def counts(request: Request) -> Response:
    """GET /api/season/counts: the roster's size, open polls, talks held ("已送党课 N 次")."""
    data = await season(request).counts()
    data.pop("requests", None)  # how many requests wait in the inbox is the producers' business
    return json(data, cache="public, max-age=10")


routes = [
    Route("/api/season/after/{show}", after, methods=["GET"]),
    Route("/api/season/counts", counts, methods=["GET"]),
    *guests.routes,
    *polls.routes,
    *talks.routes,
]
