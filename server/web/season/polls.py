"""Season polls: the phone page (`/p/{poll}`, device cookie as on `/s/{show}`), the
results page, the on-air widget's standalone page, the JSON API and the producers'
poll pages. While a `reveal: "close"` poll is open its split is in no public
answer: `GET /api/polls/{poll}` has `votes: null`, the widget and the results page
show the number of ballots only; producers read it at `/api/polls/{poll}/results`."""

import csv
import io
from datetime import datetime

import orjson
import segno
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ...domain import DomainError
from ...domain import polls as dpolls
from ...domain.fields import Invalid
from ...node import StoreUnavailable, device_hash, now_ms
from ..context import script_json
from ..devices import set_device_cookie
from ..producer import form_post, page, server_tz, with_lang
from . import common
from .common import api, error, json, producer_page, public_page, season


async def view(request: Request, poll: dpolls.Poll, device: str = "") -> dict:
    """The public view of a poll (+ `mine`, the device's own choice)."""
    res = await season(request).results(poll)
    out = dpolls.public_view(poll, res, now_ms())
    roster = {g.id: g for g in await season(request).guests()}
    for option in out["options"]:
        guest = roster.get(option["guest"] or "")
        option["photo"] = f"/guests/{guest.id}/photo?v={guest.photo}" if guest and guest.photo else None
        option["org"] = guest.org if guest else ""
    if device:
        out["mine"] = await season(request).my_choice(poll.slug, device)
    return out


def device_of(request: Request) -> str:
    device = common.leitai(request).device(request)
    return device_hash(device.id) if device else ""


# -- public ------------------------------------------------------------------------------------


async def phone_page(request: Request) -> Response:
    """The poll on a phone. Like the audience page: never a 429; a phone without a device
    gets one itself (web/devices.py), or with the page on a declared venue network."""
    lt = common.leitai(request)
    s = season(request)
    try:
        poll = await s.poll(request.path_params["poll"])
        if poll is None:
            return public_page(request, "season_missing.html", 404, title="", nav="polls")
        cookie = ""
        show = await lt.node.read(poll.show) if poll.show else None
        if lt.device(request) is None and lt.node.venues.contains(common.ip(request), show.venues if show else []):
            _, cookie = lt.auth.new_device()
        dhash = device_of(request)
        if dhash:
            await s.seen(poll.slug, dhash)
        data = await view(request, poll, dhash)
    except StoreUnavailable:
        return common.unavailable_page()
    response = public_page(
        request,
        "poll.html",
        title=poll.title,
        poll=data,
        poll_json=script_json(data),
        has_device=bool(cookie or dhash),
        nav="polls",
    )
    if cookie:
        set_device_cookie(lt, request, response, cookie)
    return response


async def results_page(request: Request) -> Response:
    try:
        poll = await season(request).poll(request.path_params["poll"])
        if poll is None:
            return public_page(request, "season_missing.html", 404, title="", nav="polls")
        data = await view(request, poll)
    except StoreUnavailable:
        return common.unavailable_page()
    rows = sorted(data["options"], key=lambda o: -(o["votes"] or 0)) if data["revealed"] else data["options"]
    total = sum(o["votes"] or 0 for o in data["options"])
    return public_page(
        request,
        "poll_results.html",
        title=poll.title,
        poll=data,
        rows=rows,
        total=total,
        poll_json=script_json(data),
        nav="polls",
    )


async def overlay_page(request: Request) -> Response:
    """The poll alone on a transparent 1920×1080 page, for OBS (see docs/season.md)."""
    poll = await season(request).poll(request.path_params["poll"])
    if poll is None:
        return Response("unknown poll", status_code=404, media_type="text/plain")
    return common.leitai(request).render(
        request,
        "overlay_poll.html",
        slug="",
        title=poll.title,
        poll=poll.slug,
        debug=request.query_params.get("debug") == "1",
    )


async def qr_code(request: Request) -> Response:
    """The poll's phone page as an SVG QR code, for the on-air widget and posters."""
    lt = common.leitai(request)
    poll = await season(request).poll(request.path_params["poll"])
    if poll is None:
        return Response("unknown poll", status_code=404, media_type="text/plain")
    buf = io.BytesIO()
    segno.make(f"{lt.public_url(request)}/p/{poll.slug}", error="m").save(
        buf, kind="svg", scale=8, border=2, dark="#111111", light="#ffffff", xmldecl=False
    )
    return Response(buf.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=300"})


@api()
async def api_list(request: Request) -> Response:
    now = now_ms()
    polls = await season(request).polls()
    return json(
        [{"slug": p.slug, "title": p.title, "status": p.status(now), "upcoming": p.upcoming(now)} for p in polls]
    )


@api()
async def api_poll(request: Request) -> Response:
    """GET /api/polls/{poll} (SPEC), plus `mine` when the request carries a device cookie."""
    poll = await season(request).poll(request.path_params["poll"])
    if poll is None:
        return error(404, "not_found")
    return json(await view(request, poll, device_of(request)))


@api(post=True)
async def api_vote(request: Request) -> Response:
    """POST /api/polls/{poll}/vote {"option"} (or {"options": [...]} for several choices)."""
    device = device_of(request)
    if not device:
        return error(401, "unauthorized", "no device: open the poll's page first")
    body = await common.body_of(request)
    chosen = body.get("options", body.get("option"))
    slug = request.path_params["poll"]
    ballot = await season(request).vote(slug, device, common.ip(request), chosen)
    return json({"options": ballot.side.split(","), "counted": ballot.status == "counted"})


# -- producers: JSON --------------------------------------------------------------------------


@api(signed=True, post=True)
async def api_create(request: Request) -> Response:
    poll = await season(request).create_poll(await common.body_of(request), server_tz())
    return json({"slug": poll.slug}, 201)


@api(signed=True, post=True)
async def api_close(request: Request) -> Response:
    poll = await season(request).close_poll(request.path_params["poll"])
    return json(await view(request, poll))


@api(signed=True, post=True)
async def api_reopen(request: Request) -> Response:
    body = await common.body_of(request)
    closes = dpolls.when(body.get("closes"), server_tz())
    if closes is None:
        return common.invalid({"closes": "closes must be a time"})
    poll = await season(request).reopen_poll(request.path_params["poll"], closes)
    return json(await view(request, poll))


@api(signed=True, post=True)
async def api_release(request: Request) -> Response:
    body = await common.body_of(request)
    reason = body.get("reason") or ""
    n = await season(request).release(request.path_params["poll"], reason if isinstance(reason, str) else "?")
    return json({"released": n})


async def producer_view(request: Request, slug: str) -> dict | None:
    poll = await season(request).poll(slug)
    if poll is None:
        return None
    return dpolls.producer_view(poll, await season(request).results(poll), now_ms())


@api(signed=True)
async def api_results(request: Request) -> Response:
    """Signed in: every split, held ballots and why."""
    data = await producer_view(request, request.path_params["poll"])
    return json(data) if data else error(404, "not_found")


@api(signed=True)
async def api_export(request: Request) -> Response:
    data = await producer_view(request, request.path_params["poll"])
    if data is None:
        return error(404, "not_found")
    fmt = request.query_params.get("format", "json")
    if fmt not in ("json", "csv"):
        return common.invalid({"format": "format must be json or csv"})
    name = f"leitai-poll-{data['slug']}-{datetime.now().strftime('%Y%m%d-%H%M')}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    if fmt == "json":
        return Response(orjson.dumps(data), media_type="application/json", headers=headers)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["option", "label", "guest", "votes", "held"])
    for o in data["options"]:
        writer.writerow([o["id"], o["label"], o["guest"] or "", o["votes"], o["held"]])
    writer.writerow(["", "ballots", "", data["ballots"], data["held_ballots"]])
    # a byte-order mark so that spreadsheet programs read the Chinese text as UTF-8
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


# -- producers: pages ----------------------------------------------------------------------------


async def polls_admin(request: Request, form: dict, errors: dict, status: int = 200) -> Response:
    t = common.translator(request)
    s = season(request)
    now = now_ms()
    rows = []
    for p in await s.polls():
        rows.append((p, p.status(now), await s.results(p)))
    return producer_page(
        request,
        "season_polls.html",
        status,
        nav="polls",
        title=t("polls.title"),
        rows=rows,
        form=form,
        errors=errors,
        guests=await s.guests(),
        shows=await s.episodes(),
        upcoming=lambda p: p.upcoming(now),
    )


@page
async def admin_list(request: Request) -> Response:
    return await polls_admin(request, {"reveal": "live", "choices": "1", "guests": [], "free": ""}, {})


def options_from_form(data: dict) -> list[dict]:
    options = [{"id": gid, "label": ""} for gid in data.get("guests") or []]
    free = [line.strip() for line in str(data.get("free", "")).splitlines() if line.strip()]
    options += [{"id": f"o{i}", "label": label} for i, label in enumerate(free, 1)]
    return options


@form_post
async def admin_create(request: Request) -> Response:
    data = common.form_dict(await request.form(), lists=("guests",))
    body = {k: data.get(k, "") for k in ("slug", "title", "note", "reveal", "choices", "opens", "closes", "show")}
    body["options"] = options_from_form(data)
    try:
        poll = await season(request).create_poll(body, server_tz())
    except (Invalid, DomainError) as exc:
        return await polls_admin(request, data, common.field_errors(exc, common.translator(request)), 400)
    except common.Conflict:
        t = common.translator(request)
        return await polls_admin(request, data, {"slug": t("field.err.slug_taken")}, 409)
    return RedirectResponse(with_lang(request, f"/season/polls/{poll.slug}", created="1"), status_code=303)


@page
async def admin_poll(request: Request) -> Response:
    slug = request.path_params["poll"]
    data = await producer_view(request, slug)
    if data is None:
        return public_page(request, "season_missing.html", 404, title="", nav="polls")
    lt = common.leitai(request)
    base = lt.public_url(request)
    shows = [s for s in await season(request).episodes() if s.slug == data["show"]]
    overlay = (
        f"{base}/overlay/{shows[0].slug}?key={shows[0].overlay_key}&widgets=pk,timer,poll&poll={slug}" if shows else ""
    )
    return producer_page(
        request,
        "season_poll.html",
        nav="polls",
        title=data["title"],
        poll=data,
        base=base,
        show_overlay=overlay,
        message=request.query_params.get("done", ""),
        total=sum(o["votes"] for o in data["options"]),
    )


@form_post
async def admin_action(request: Request) -> Response:
    slug = request.path_params["poll"]
    form = common.form_dict(await request.form())
    action = form.get("action")
    s = season(request)
    try:
        if action == "close":
            await s.close_poll(slug)
        elif action == "reopen":
            closes = dpolls.when(form.get("closes"), server_tz())
            await s.reopen_poll(slug, closes or 0)
        elif action == "release":
            await s.release(slug, form.get("reason", ""))
        else:
            return Response("unknown action", status_code=400)
    except DomainError as exc:
        if exc.code == "not_found":
            return Response("unknown poll", status_code=404)
        return RedirectResponse(with_lang(request, f"/season/polls/{slug}", done=f"error:{exc.code}"), status_code=303)
    return RedirectResponse(with_lang(request, f"/season/polls/{slug}", done=action), status_code=303)


routes = [
    Route("/p/{poll}", phone_page, methods=["GET"]),
    Route("/p/{poll}/results", results_page, methods=["GET"]),
    Route("/p/{poll}/qr.svg", qr_code, methods=["GET"]),
    Route("/overlay/poll/{poll}", overlay_page, methods=["GET"]),
    Route("/api/polls", api_list, methods=["GET"]),
    Route("/api/polls", api_create, methods=["POST"]),
    Route("/api/polls/{poll}", api_poll, methods=["GET"]),
    Route("/api/polls/{poll}/vote", api_vote, methods=["POST"]),
    Route("/api/polls/{poll}/close", api_close, methods=["POST"]),
    Route("/api/polls/{poll}/reopen", api_reopen, methods=["POST"]),
    Route("/api/polls/{poll}/release", api_release, methods=["POST"]),
    Route("/api/polls/{poll}/results", api_results, methods=["GET"]),
    Route("/api/polls/{poll}/export", api_export, methods=["GET"]),
    Route("/season/polls", admin_list, methods=["GET"]),
    Route("/season/polls", admin_create, methods=["POST"]),
    Route("/season/polls/{poll}", admin_poll, methods=["GET"]),
    Route("/season/polls/{poll}", admin_action, methods=["POST"]),
]
