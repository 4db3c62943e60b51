"""New devices: cheap for one phone, costly in bulk.

A phone without a device cookie loads the audience page as usual (never a 429)
and gets its device itself: the page asks for a proof-of-work challenge
(ALTCHA, PBKDF2/SHA-256: the browser's WebCrypto solves it in workers in about a
second), solves it and posts the solution; the answer sets the device cookie.
The work per device grows with the number of challenges a network asked for in
the last hour (`DEVICE_POW_FREE` at the base cost, then doubling, up to
`DEVICE_POW_MAX_FACTOR`), so one phone pays little and a farm of scripted
devices pays a lot. A phone on a declared venue network gets its cookie with the
page, no work. A challenge is signed, expires after five minutes and can be
used once. Verifying costs the server one key derivation, so posts are
budgeted per network.

The page keeps a signed memory of its device in localStorage and shows it when
it needs a new one: a banned device that clears its cookie comes back banned.
"""

import asyncio
import time

import altcha
import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..node import StoreUnavailable, device_hash
from .context import Leitai, leitai
from .security import DEVICE_COOKIE, client_ip

ALGORITHM = "PBKDF2/SHA-256"
CHALLENGE_TTL_S = 300


def cost_for(lt: Leitai, asked: int) -> int:
    """The work for a network's `asked`-th challenge this hour."""
    s = lt.settings
    doublings = max(0, (asked - 1) // max(1, s.device_pow_free))
    return s.device_pow_cost * min(s.device_pow_max_factor, 2**doublings)


def set_device_cookie(lt: Leitai, request: Request, response: Response, cookie: str) -> None:
    response.set_cookie(
        DEVICE_COOKIE,
        cookie,
        max_age=lt.settings.device_max_age_s,
        httponly=True,
        samesite="lax",
        secure=lt.secure(request),
    )


async def challenge(request: Request) -> Response:
    lt = leitai(request)
    ip = client_ip(request.scope)
    network = lt.node.venues.network(ip)
    try:
        asked = await lt.node.store.count(f"mint:{network}", 3600)  # guard: device work grows
    except StoreUnavailable:
        return JSONResponse({"error": "unavailable", "retry_ms": 2000}, status_code=503)
    ch = altcha.create_challenge(
        ALGORITHM, cost_for(lt, asked), hmac_secret=lt.device_secret, expires_at=int(time.time()) + CHALLENGE_TTL_S
    )
    return Response(orjson.dumps(ch.to_dict()), media_type="application/json", headers={"Cache-Control": "no-store"})


async def mint(request: Request) -> Response:
    lt = leitai(request)
    if not lt.auth.origin_ok(request):
        return JSONResponse({"error": "forbidden", "message": "origin not allowed"}, status_code=403)
    ip = client_ip(request.scope)
    store = lt.node.store
    try:
        body = orjson.loads(await request.body())
        payload = body["payload"]
        assert isinstance(payload, str) and len(payload) < 4096
    except Exception:
        return JSONResponse({"error": "invalid", "message": "expected {payload, previous?}"}, status_code=400)
    try:
        s = lt.settings
        wait = await store.take("-", lt.node.venues.network(ip), "mint", s.device_mint_rate, s.device_mint_burst)
        if wait:
            return JSONResponse(
                {"error": "rate_limited", "retry_ms": int(wait * 1000) + 1},
                status_code=429,
                headers={"Retry-After": str(int(wait) + 1)},
            )
        result = await asyncio.to_thread(altcha.verify_solution, payload, lt.device_secret)
        if not result.verified:  # guard: device work checked
            return JSONResponse(
                {"error": "invalid", "message": "the work does not check out; ask again"}, status_code=400
            )
        nonce = altcha.Payload.from_base64(payload).challenge.parameters.nonce
        if not await store.once(f"pow:{nonce}", CHALLENGE_TTL_S + 60):
            return JSONResponse({"error": "conflict", "message": "that work was used already"}, status_code=409)
    except StoreUnavailable:
        return JSONResponse({"error": "unavailable", "retry_ms": 2000}, status_code=503)
    previous = body.get("previous")
    parent = lt.auth.remembered(previous) if isinstance(previous, str) else ""
    device, cookie = lt.auth.new_device(parent)
    response = JSONResponse({"memory": lt.auth.memory(device_hash(device.id))})
    set_device_cookie(lt, request, response, cookie)
    return response


routes = [
    Route("/api/device/challenge", challenge, methods=["GET"]),
    Route("/api/device", mint, methods=["POST"]),
]
