"""The pages people open: the audience page, the OBS overlay, the host console,
sign-in and sign-out, and the audience QR code."""

import io
import math
from typing import Any
from urllib.parse import quote

import segno
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from ..node import StoreUnavailable
from .context import leitai
from .devices import set_device_cookie
from .security import SESSION_COOKIE, client_ip

# poll: &poll={slug} (docs/season.md); floor: the speaking clock (docs/pages.md)
WIDGETS = ("pk", "timer", "likes", "question", "viewers", "qr", "poll", "floor")
DEFAULT_WIDGETS = ("pk", "timer", "likes", "question", "viewers")


def unknown_show() -> Response:
    return PlainTextResponse("unknown show", status_code=404)


async def audience_page(request: Request) -> Response:
    """Always the page (never a 429): a phone without a device gets one itself
    (web/devices.py), or with the page on a declared venue network."""
    lt = leitai(request)
    rt = await lt.runtime(request, request.path_params["show"])
    if rt is None:
        return unknown_show()
    cookie = ""
    if lt.device(request) is None and lt.node.venues.contains(client_ip(request.scope), rt.state.venues):
        _, cookie = lt.auth.new_device()  # guard: venue cookie
    response = lt.render(
        request,
        "audience.html",
        show_lang=rt.state.lang,  # a phone's own language first (docs/pages.md, "Language")
        slug=rt.state.slug,
        title=rt.state.title,
        has_device=bool(cookie) or lt.device(request) is not None,
    )
    if cookie:
        set_device_cookie(lt, request, response, cookie)
    return response


async def overlay_page(request: Request) -> Response:
    lt = leitai(request)
    rt = await lt.runtime(request, request.path_params["show"], request.query_params.get("key", ""))
    if rt is None:
        return unknown_show()
    q = request.query_params
    widgets = [w for w in q.get("widgets", ",".join(DEFAULT_WIDGETS)).split(",") if w in WIDGETS]
    try:  # the layout fills the safe area at 1: a scale only shrinks toward it
        scale = min(1.0, max(0.5, float(q.get("scale", "1"))))
    except ValueError:
        scale = 1.0
    position = q.get("position") if q.get("position") in ("top", "bottom") else "bottom"
    layout = "vertical" if q.get("layout") == "vertical" else "landscape"
    key = q.get("key", "")
    extra: dict[str, Any] = {"qr_src": f"/qr/{rt.state.slug}.svg?key={quote(key)}"} if key else {}  # for a draft
    return lt.render(
        request,
        "overlay.html",
        show_lang=rt.state.lang,  # the broadcast's language, never OBS's
        browser=False,
        slug=rt.state.slug,
        title=rt.state.title,
        widgets=widgets,
        debug=q.get("debug") == "1",
        scale=scale,
        position=position,
        layout=layout,
        **extra,
    )


async def console_page(request: Request) -> Response:
    lt = leitai(request)
    slug = request.path_params["show"]
    if not lt.signed_in(request):
        return RedirectResponse(f"/login?next=/console/{slug}", status_code=303)
    rt = await lt.node.runtime(slug)
    if rt is None:
        return unknown_show()
    return lt.render(request, "console.html", show_lang=rt.state.lang, slug=rt.state.slug, title=rt.state.title)


def safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/shows"


async def login_form(request: Request) -> Response:
    return leitai(request).render(
        request,
        "login.html",
        next=safe_next(request.query_params.get("next")),
        error=request.query_params.get("error") == "1",
        slug="",
        title="",
    )


def throttled(request: Request, next_url: str, wait: float) -> Response:
    """The sign-in form again, 429: too many failed tries (web/sessions.py)."""
    seconds = max(1, math.ceil(wait))
    response = leitai(request).render(
        request, "login.html", status_code=429, next=next_url, error=False, wait=seconds, slug="", title=""
    )
    response.headers["Retry-After"] = str(seconds)
    return response


async def login(request: Request) -> Response:
    lt = leitai(request)
    if not lt.auth.origin_ok(request):
        return PlainTextResponse("cross-site sign-in refused", status_code=403)
    form = await request.form()
    next_url = safe_next(str(form.get("next", "")))
    ip = client_ip(request.scope)
    wait = lt.sessions.login_wait(ip)
    if wait:  # the token is not even compared
        return throttled(request, next_url, wait)
    try:
        if not lt.auth.check_token(str(form.get("token", ""))):
            await lt.sessions.failed(ip)
            return RedirectResponse(f"/login?error=1&next={next_url}", status_code=303)
        await lt.sessions.load()  # made under the latest "sign out everywhere"
    except StoreUnavailable:
        return PlainTextResponse("sign-in is unavailable for a moment; try again", status_code=503)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        lt.auth.new_session(lt.sessions.generation),
        max_age=lt.settings.session_max_age_s,
        httponly=True,
        samesite="lax",
        secure=lt.secure(request),
    )
    return response


async def logout(request: Request) -> Response:
    """Sign out: this session ends on the server too (its cookie no longer works
    anywhere, and a console open with it is closed)."""
    return await _sign_out(request, everywhere=False)


async def logout_all(request: Request) -> Response:
    """Sign out everywhere: every host session ends."""
    return await _sign_out(request, everywhere=True)


async def _sign_out(request: Request, everywhere: bool) -> Response:
    lt = leitai(request)
    if not lt.auth.origin_ok(request):
        return PlainTextResponse("cross-site sign-out refused", status_code=403)
    session = lt.session(request)
    if everywhere and session is None:
        return PlainTextResponse("sign in first", status_code=401)
    try:
        if everywhere:
            await lt.sessions.revoke_all()
        elif session is not None:
            await lt.sessions.revoke(session)
    except StoreUnavailable:
        return PlainTextResponse("sign-out is unavailable for a moment; try again", status_code=503)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


async def index(request: Request) -> Response:
    return RedirectResponse("/shows" if leitai(request).signed_in(request) else "/s/demo", status_code=303)


async def qr_code(request: Request) -> Response:
    """The audience page's address as an SVG QR code, for the overlay and the console."""
    lt = leitai(request)
    slug = request.path_params["show"]
    if await lt.runtime(request, slug, request.query_params.get("key", "")) is None:
        return unknown_show()
    buf = io.BytesIO()
    segno.make(f"{lt.public_url(request)}/s/{slug}", error="m").save(
        buf, kind="svg", scale=8, border=2, dark="#111111", light="#ffffff", xmldecl=False
    )
    return Response(buf.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=300"})


routes = [
    Route("/", index),
    Route("/s/{show}", audience_page),
    Route("/overlay/{show}", overlay_page),
    Route("/console/{show}", console_page),
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/logout/all", logout_all, methods=["POST"]),
    Route("/qr/{show}.svg", qr_code),
]
