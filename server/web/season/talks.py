"""Talks sent to the grassroots: the public request form (`/invite`) and its API, the
producers' inbox and workflow (`/season/requests`), talks on a list and a month view
(`/season/talks`), and public talks with their sign-up page (`/talks/{id}`).

Contact data (a request's contact, phone and notes; a sign-up's name and phone) is
sent only to signed-in producers: the public pages and APIs here never carry it.
"""

import calendar
from datetime import date
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ...domain import DomainError
from ...domain import invitations as dinv
from ...domain.fields import Invalid, masked_mobile
from ...node import Conflict, StoreUnavailable
from ...node.talks import Limited
from ..producer import form_post, page, with_lang
from . import common
from .common import api, error, json, producer_page, public_page, season

REQUEST_FIELDS = ("unit", "unit_type", "district", "contact", "phone", "topic", "audience", "dates", "notes")


# -- the request form (public) --------------------------------------------------------------


async def invite_form(request: Request, form: dict, errors: dict, status: int = 200, **extra) -> Response:
    guests = await season(request).guests(listed_only=True)
    return public_page(
        request,
        "invite.html",
        status,
        title="",
        form=form,
        errors=errors,
        guests=guests,
        unit_types=dinv.UNIT_TYPES,
        flimits=dinv.INVITE_LIMITS,
        nav="invite",
        **extra,
    )


async def invite_page(request: Request) -> Response:
    wished = request.query_params.get("guest", "")
    try:
        return await invite_form(request, {"guest_ids": [wished] if wished else [], "unit_type": ""}, {})
    except StoreUnavailable:
        return common.unavailable_page()


def request_from_form(data: dict) -> dict:
    body = {k: data.get(k, "") for k in REQUEST_FIELDS}
    body["guest_ids"] = [g for g in data.get("guest_ids") or [] if g != "any"]
    body["consent"] = data.get("consent") in ("1", "on", "true")
    return body


async def invite_post(request: Request) -> Response:
    """The form without script: a bad field re-shows the form with what was typed and
    the message beside the field (400); success goes to the thank-you page."""
    if not common.same_origin(request):
        return Response("cross-site form refused", status_code=403)
    data = common.form_dict(await request.form(), lists=("guest_ids",))
    t = common.translator(request)
    try:
        inv = await season(request).talks.request(request_from_form(data), common.ip(request))
    except (Invalid, DomainError) as exc:
        return await invite_form(request, data, common.field_errors(exc, t), 400)
    except Limited:
        return await invite_form(request, data, {"form": t("invite.err.limited")}, 429)
    except StoreUnavailable:
        return await invite_form(request, data, {"form": t("invite.err.unavailable")}, 503)
    return RedirectResponse(with_lang(request, "/invite/done", id=inv.id), status_code=303)


async def invite_done(request: Request) -> Response:
    rid = request.query_params.get("id", "")
    return public_page(
        request, "invite_done.html", title="", rid=rid if dinv.INVITATION_ID.match(rid) else "", nav="invite"
    )


@api(post=True)
async def api_request(request: Request) -> Response:
    """POST /api/invitations (SPEC): 201 {"id"}; a bad or missing field: 400 naming it."""
    inv = await season(request).talks.request(await common.body_of(request), common.ip(request))
    return json({"id": inv.id}, 201)


# -- the inbox (producers) ----------------------------------------------------------------------


@api(signed=True)
async def api_requests(request: Request) -> Response:
    """GET /api/invitations (signed in): every request, contact data included."""
    return json([i.producer_view() for i in await season(request).talks.invitations()])


@api(signed=True)
async def api_one_request(request: Request) -> Response:
    inv = await season(request).talks.invitation(request.path_params["id"])
    return json(inv.producer_view()) if inv else error(404, "not_found")


@api(signed=True, post=True)
async def api_move(request: Request) -> Response:
    """POST /api/invitations/{id} {"status", ...}: an impossible transition is 409."""
    body = await common.body_of(request)
    by = str(body.get("by") or "")
    inv = await season(request).talks.move(request.path_params["id"], body, common.who(request, by))
    return json(inv.producer_view())


@page
async def inbox(request: Request) -> Response:
    t = common.translator(request)
    status = request.query_params.get("status", "")
    everything = await season(request).talks.invitations()
    shown = [i for i in everything if i.status == status] if status in dinv.STATUSES else everything
    counts = {s: sum(1 for i in everything if i.status == s) for s in dinv.STATUSES}
    roster = {g.id: g.name for g in await season(request).guests()}
    return producer_page(
        request,
        "season_inbox.html",
        nav="requests",
        title=t("inbox.title"),
        requests=shown,
        counts=counts,
        status=status,
        statuses=dinv.STATUSES,
        roster=roster,
        total=len(everything),
        masked=masked_mobile,
    )


async def request_page(request: Request, inv, errors: dict, status: int = 200, **extra) -> Response:
    roster = await season(request).guests()
    return producer_page(
        request,
        "season_request.html",
        status,
        nav="requests",
        title=inv.unit,
        inv=inv,
        errors=errors,
        roster=roster,
        names={g.id: g.name for g in roster},
        nexts=dinv.NEXT,
        by=common.remembered_by(request),
        form=extra.pop("form", {}),
        **extra,
    )


@page
async def request_detail(request: Request) -> Response:
    inv = await season(request).talks.invitation(request.path_params["id"])
    if inv is None:
        return public_page(request, "season_missing.html", 404, title="", nav="requests")
    return await request_page(request, inv, {}, moved=request.query_params.get("moved", ""))


@form_post
async def request_move(request: Request) -> Response:
    rid = request.path_params["id"]
    talks = season(request).talks
    data = common.form_dict(await request.form())
    data["public"] = "1" if data.get("public") else "0"
    t = common.translator(request)
    by = common.who(request, str(data.get("by") or ""))
    try:
        inv = await talks.move(rid, data, by)
    except (Invalid, DomainError, Conflict) as exc:
        current = await talks.invitation(rid)
        if current is None:
            return public_page(request, "season_missing.html", 404, title="", nav="requests")
        if isinstance(exc, Conflict) or (isinstance(exc, DomainError) and exc.code == "conflict"):
            return await request_page(request, current, {"form": t("inbox.err.conflict")}, 409, form=data)
        return await request_page(request, current, common.field_errors(exc, t), 400, form=data)
    response = RedirectResponse(with_lang(request, f"/season/requests/{rid}", moved=inv.status), status_code=303)
    if data.get("by"):
        response.set_cookie(
            common.BY_COOKIE,
            quote(by),
            max_age=365 * 86400,
            httponly=True,
            samesite="lax",
            secure=common.leitai(request).secure(request),
        )
    return response


# -- talks ------------------------------------------------------------------------------------------


def month_grid(year: int, month: int, talks: list) -> list[list[tuple[date | None, list]]]:
    """Weeks (Monday first) of (day, talks that day); None outside the month."""
    by_day: dict[str, list] = {}
    for talk in talks:
        by_day.setdefault(talk.date, []).append(talk)
    weeks = []
    for week in calendar.Calendar(firstweekday=0).monthdatescalendar(year, month):
        weeks.append([(d, by_day.get(d.isoformat(), [])) if d.month == month else (None, []) for d in week])
    return weeks


def month_of(value: str) -> tuple[int, int]:
    try:
        year, month = (int(p) for p in value.split("-"))
        if 2000 <= year <= 2100 and 1 <= month <= 12:
            return year, month
    except ValueError:
        pass
    today = date.today()
    return today.year, today.month


async def talks_page(request: Request, form: dict, errors: dict, status: int = 200) -> Response:
    t = common.translator(request)
    year, month = month_of(request.query_params.get("month", ""))
    talks = await season(request).talks.all()
    prev = f"{year - (month == 1)}-{(month - 2) % 12 + 1:02d}"
    nxt = f"{year + (month == 12)}-{month % 12 + 1:02d}"
    roster = await season(request).guests()
    return producer_page(
        request,
        "season_talks.html",
        status,
        nav="talks",
        title=t("talks.title"),
        talks=talks,
        weeks=month_grid(year, month, talks),
        year=year,
        month=month,
        prev=prev,
        next=nxt,
        today=date.today(),
        roster=roster,
        names={g.id: g.name for g in roster},
        form=form,
        errors=errors,
        kinds=dinv.KINDS,
        counts=await season(request).talks.counts(),
    )


@page
async def talks_list(request: Request) -> Response:
    return await talks_page(request, {"kind": "meet", "capacity": "0"}, {})


@form_post
async def talk_add(request: Request) -> Response:
    data = common.form_dict(await request.form(), lists=("guest_ids",))
    data["public"] = "1" if data.get("public") else "0"
    try:
        talk = await season(request).talks.add(data)
    except (Invalid, DomainError) as exc:
        return await talks_page(request, data, common.field_errors(exc, common.translator(request)), 400)
    return RedirectResponse(with_lang(request, f"/season/talks/{talk.id}", created="1"), status_code=303)


@page
async def talk_detail(request: Request) -> Response:
    talks = season(request).talks
    talk = await talks.talk(request.path_params["id"])
    if talk is None:
        return public_page(request, "season_missing.html", 404, title="", nav="talks")
    roster = {g.id: g.name for g in await season(request).guests()}
    return producer_page(
        request,
        "season_talk.html",
        nav="talks",
        title=talk.title,
        talk=talk,
        names=roster,
        signups=await talks.signups(talk.id),
        places=await talks.places(talk),
        masked=masked_mobile,
        done=request.query_params.get("done", ""),
    )


@form_post
async def talk_change(request: Request) -> Response:
    tid = request.path_params["id"]
    talks = season(request).talks
    data = common.form_dict(await request.form())
    try:
        if data.get("action") == "cancel_signup":
            await talks.cancel_signup(tid, data.get("key", ""))
        else:
            data["public"] = "1" if data.get("public") else "0"
            await talks.change(tid, {k: v for k, v in data.items() if k != "action"})
    except (Invalid, DomainError, Conflict) as exc:
        code = exc.code if isinstance(exc, DomainError) else "conflict"
        return RedirectResponse(with_lang(request, f"/season/talks/{tid}", done=f"error:{code}"), status_code=303)
    return RedirectResponse(with_lang(request, f"/season/talks/{tid}", done="saved"), status_code=303)


@api()
async def api_talks(request: Request) -> Response:
    """Public talks from today on (signed in: every talk). Never contact data."""
    talks = season(request).talks
    if common.signed_in(request):
        return json([t.record() for t in await talks.all()])
    out = []
    for talk in await talks.public():
        p = await talks.places(talk)
        out.append({**talk.public_view(), "registered": p.registered, "waiting": p.waiting})
    return json(out)


@api(signed=True, post=True)
async def api_talk_add(request: Request) -> Response:
    talk = await season(request).talks.add(await common.body_of(request))
    return json({"id": talk.id}, 201)


@api(signed=True, post=True)
async def api_talk_change(request: Request) -> Response:
    talk = await season(request).talks.change(request.path_params["id"], await common.body_of(request))
    return json(talk.record())


@api(signed=True)
async def api_signups(request: Request) -> Response:
    return json(await season(request).talks.signups(request.path_params["id"]))


# -- a public talk and its sign-up --------------------------------------------------------------------


async def talk_public(request: Request, form: dict, errors: dict, status: int = 200, **extra) -> Response:
    talks = season(request).talks
    talk = await talks.talk(request.path_params["id"])
    if talk is None or not talk.public:
        return public_page(request, "season_missing.html", 404, title="", nav="guests")
    guests = [g for g in await season(request).guests() if g.id in talk.guest_ids]
    open_ = talk.status == "scheduled" and talk.capacity > 0 and talk.date >= date.today().isoformat()
    return public_page(
        request,
        "talk.html",
        status,
        title=talk.title,
        talk=talk,
        guests=guests,
        form=form,
        errors=errors,
        places=await talks.places(talk),
        signup_open=open_,
        nav="guests",
        **extra,
    )


async def talk_page(request: Request) -> Response:
    try:
        return await talk_public(request, {}, {})
    except StoreUnavailable:
        return common.unavailable_page()


async def talk_signup(request: Request) -> Response:
    if not common.same_origin(request):
        return Response("cross-site form refused", status_code=403)
    data = common.form_dict(await request.form())
    body = {"name": data.get("name", ""), "phone": data.get("phone", ""), "consent": data.get("consent") == "1"}
    t = common.translator(request)
    try:
        status, place, _ = await season(request).talks.sign_up(request.path_params["id"], body, common.ip(request))
    except (Invalid, DomainError) as exc:
        if isinstance(exc, DomainError) and exc.code == "not_found":
            return public_page(request, "season_missing.html", 404, title="", nav="guests")
        errors = common.field_errors(exc, t) if isinstance(exc, Invalid) else {"form": t("talk.err.closed")}
        return await talk_public(request, data, errors, 400 if isinstance(exc, Invalid) else 409)
    except Limited:
        return await talk_public(request, data, {"form": t("invite.err.limited")}, 429)
    return await talk_public(request, {}, {}, signed=(status, place))


@api(post=True)
async def api_signup(request: Request) -> Response:
    """POST /api/talks/{id}/signup {"name", "phone", "consent": true} → {"status", "place"}."""
    body = await common.body_of(request)
    status, place, new = await season(request).talks.sign_up(request.path_params["id"], body, common.ip(request))
    return json({"status": status, "place": place}, 201 if new else 200)


routes = [
    Route("/invite", invite_page, methods=["GET"]),
    Route("/invite", invite_post, methods=["POST"]),
    Route("/invite/done", invite_done, methods=["GET"]),
    Route("/talks/{id}", talk_page, methods=["GET"]),
    Route("/talks/{id}", talk_signup, methods=["POST"]),
    Route("/api/invitations", api_request, methods=["POST"]),
    Route("/api/invitations", api_requests, methods=["GET"]),
    Route("/api/invitations/{id}", api_one_request, methods=["GET"]),
    Route("/api/invitations/{id}", api_move, methods=["POST"]),
    Route("/api/talks", api_talks, methods=["GET"]),
    Route("/api/talks", api_talk_add, methods=["POST"]),
    Route("/api/talks/{id}", api_talk_change, methods=["POST"]),
    Route("/api/talks/{id}/signup", api_signup, methods=["POST"]),
    Route("/api/talks/{id}/signups", api_signups, methods=["GET"]),
    Route("/season/requests", inbox, methods=["GET"]),
    Route("/season/requests/{id}", request_detail, methods=["GET"]),
    Route("/season/requests/{id}", request_move, methods=["POST"]),
    Route("/season/talks", talks_list, methods=["GET"]),
    Route("/season/talks", talk_add, methods=["POST"]),
    Route("/season/talks/{id}", talk_detail, methods=["GET"]),
    Route("/season/talks/{id}", talk_change, methods=["POST"]),
]
