"""The roster: public pages (`/guests`, `/guests/{id}`, the photo), the JSON API
(`GET/POST /api/guests`, a guest's profile and photo), and the producers' roster
pages (`/season/guests`). No public answer carries a guest's `contact`."""

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ...domain import DomainError
from ...domain.fields import Invalid
from ...domain.guests import GUEST_LIMITS, SECTORS
from ...node import StoreUnavailable
from ..producer import form_post, page, with_lang
from . import common
from .common import api, error, json, producer_page, public_page, season
from .photos import BadPhoto, checked_photo

FORM_FIELDS = ("name", "title", "org", "sector", "bio", "topics", "contact", "listed")


def photo_url(guest: dict) -> str | None:
    return f"/guests/{guest['id']}/photo?v={guest['photo']}" if guest.get("photo") else None


def with_photo(view: dict) -> dict:
    return {**view, "photo": photo_url(view)}


# -- public ------------------------------------------------------------------------------------


async def roster_page(request: Request) -> Response:
    s = season(request)
    try:
        guests = await s.roster()
        poll = await s.open_poll()
        talks = await s.talks.public()
    except StoreUnavailable:
        return common.unavailable_page()
    names = {g["id"]: g["name"] for g in guests}
    return public_page(
        request,
        "guests.html",
        title="",
        guests=[with_photo(g) for g in guests],
        poll=poll,
        talks=talks,
        names=names,
        nav="guests",
    )


async def profile_page(request: Request) -> Response:
    s = season(request)
    try:
        profile = await s.profile(request.path_params["guest"])
    except StoreUnavailable:
        return common.unavailable_page()
    if profile is None:
        return public_page(request, "season_missing.html", 404, title="", nav="guests")
    guest = with_photo(profile["guest"])
    return public_page(request, "guest.html", title=guest["name"], guest=guest, profile=profile, nav="guests")


async def photo(request: Request) -> Response:
    """A guest's photo. The address carries its version: a matching one is cached for
    good, any other briefly (a new photo gets a new address)."""
    found = await season(request).photo(request.path_params["guest"])
    if found is None:
        return Response(b"", status_code=404)
    data, version = found
    etag = f'"{version}"'
    cache = "public, max-age=31536000, immutable" if request.query_params.get("v") == version else "public, max-age=60"
    headers = {"Cache-Control": cache, "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="image/jpeg", headers=headers)


@api()
async def api_roster(request: Request) -> Response:
    """GET /api/guests: [{"id", "name", "title", "org", "sector", "episodes", "talks", ...}]."""
    return json([with_photo(g) for g in await season(request).roster()], cache="public, max-age=10")


@api()
async def api_profile(request: Request) -> Response:
    profile = await season(request).profile(request.path_params["guest"])
    if profile is None:
        return error(404, "not_found")
    return json({**profile, "guest": with_photo(profile["guest"])}, cache="public, max-age=10")


# -- producers: JSON --------------------------------------------------------------------------


@api(signed=True, post=True)
async def api_create(request: Request) -> Response:
    guest = await season(request).create_guest(await common.body_of(request))
    return json({"id": guest.id}, 201)


@api(signed=True, post=True)
async def api_edit(request: Request) -> Response:
    guest = await season(request).edit_guest(request.path_params["guest"], await common.body_of(request))
    return json({"id": guest.id, "version": guest.version})


async def read_upload(request: Request) -> bytes:
    """The `photo` file of a multipart post, read within PHOTO_MAX_BYTES (BadPhoto past it)."""
    limit = common.leitai(request).settings.photo_max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise BadPhoto("size", "too large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit + 64 * 1024:
            raise BadPhoto("size", "too large")
        chunks.append(chunk)
    request._body = b"".join(chunks)  # the form parser reads this instead of the spent stream
    form = await request.form(max_files=1, max_fields=8)
    upload = form.get("photo")
    if not isinstance(upload, UploadFile):
        raise BadPhoto("missing", "no photo in the form (field photo)")
    return await upload.read()


async def store_photo(request: Request, gid: str) -> str:
    """Check, re-encode and keep an uploaded photo; its new address."""
    s = common.leitai(request).settings
    jpeg = await checked_photo(await read_upload(request), s.photo_max_bytes, s.photo_px)
    guest = await season(request).set_photo(gid, jpeg)
    return f"/guests/{guest.id}/photo?v={guest.photo}"


@api(signed=True, post=True)
async def api_photo(request: Request) -> Response:
    gid = request.path_params["guest"]
    if await season(request).guest(gid) is None:
        return error(404, "not_found")
    try:
        url = await store_photo(request, gid)
    except BadPhoto as exc:
        return error(413 if exc.key == "size" else 400, "invalid", str(exc), fields={"photo": str(exc)})
    return json({"photo": url})


# -- producers: pages ----------------------------------------------------------------------------


def roster_admin(request: Request, guests: list, form: dict, errors: dict, status: int = 200) -> Response:
    t = common.translator(request)
    return producer_page(
        request,
        "season_guests.html",
        status,
        nav="guests",
        title=t("roster.title"),
        guests=guests,
        form=form,
        errors=errors,
        sectors=SECTORS,
        flimits=GUEST_LIMITS,
    )


@page
async def admin_list(request: Request) -> Response:
    return roster_admin(request, await season(request).guests(), {"sector": "other", "listed": "1"}, {})


@form_post
async def admin_create(request: Request) -> Response:
    data = common.form_dict(await request.form())
    try:
        guest = await season(request).create_guest(data)
    except (Invalid, DomainError) as exc:
        errors = common.field_errors(exc, common.translator(request))
        return roster_admin(request, await season(request).guests(), data, errors, 400)
    return RedirectResponse(with_lang(request, f"/season/guests/{guest.id}", created="1"), status_code=303)


def guest_admin(request: Request, guest, form: dict, errors: dict, status: int = 200, **extra) -> Response:
    settings = common.leitai(request).settings
    extra.update(photo_mb=settings.photo_max_bytes >> 20, photo_px=settings.photo_px)
    return producer_page(
        request,
        "season_guest.html",
        status,
        nav="guests",
        title=guest.name,
        guest=guest,
        form=form,
        errors=errors,
        sectors=SECTORS,
        flimits=GUEST_LIMITS,
        photo=photo_url(guest.record()),
        **extra,
    )


def guest_form(guest) -> dict:
    rec = guest.record()
    return {**rec, "topics": "\n".join(guest.topics), "listed": "1" if guest.listed else ""}


@page
async def admin_guest(request: Request) -> Response:
    guest = await season(request).guest(request.path_params["guest"])
    if guest is None:
        return public_page(request, "season_missing.html", 404, title="", nav="guests")
    q = request.query_params
    return guest_admin(
        request,
        guest,
        guest_form(guest),
        {},
        saved=q.get("saved") == "1",
        created=q.get("created") == "1",
        photo_saved=q.get("photo") == "1",
    )


@form_post
async def admin_edit(request: Request) -> Response:
    gid = request.path_params["guest"]
    data = common.form_dict(await request.form())
    data["listed"] = "1" if data.get("listed") else "0"
    try:
        await season(request).edit_guest(gid, {k: v for k, v in data.items() if k in FORM_FIELDS})
    except (Invalid, DomainError) as exc:
        guest = await season(request).guest(gid)
        if guest is None:
            return public_page(request, "season_missing.html", 404, title="", nav="guests")
        return guest_admin(request, guest, data, common.field_errors(exc, common.translator(request)), 400)
    return RedirectResponse(with_lang(request, f"/season/guests/{gid}", saved="1"), status_code=303)


@form_post
async def admin_photo(request: Request) -> Response:
    gid = request.path_params["guest"]
    guest = await season(request).guest(gid)
    if guest is None:
        return public_page(request, "season_missing.html", 404, title="", nav="guests")
    try:
        await store_photo(request, gid)
    except BadPhoto as exc:
        t = common.translator(request)
        message = t(f"field.err.photo_{exc.key}").format(n=common.leitai(request).settings.photo_max_bytes >> 20)
        return guest_admin(request, guest, guest_form(guest), {"photo": message}, 413 if exc.key == "size" else 400)
    return RedirectResponse(with_lang(request, f"/season/guests/{gid}", photo="1"), status_code=303)


routes = [
    Route("/guests", roster_page, methods=["GET"]),
    Route("/guests/{guest}", profile_page, methods=["GET"]),
    Route("/guests/{guest}/photo", photo, methods=["GET"]),
    Route("/api/guests", api_roster, methods=["GET"]),
    Route("/api/guests", api_create, methods=["POST"]),
    Route("/api/guests/{guest}", api_profile, methods=["GET"]),
    Route("/api/guests/{guest}", api_edit, methods=["POST"]),
    Route("/api/guests/{guest}/photo", api_photo, methods=["POST"]),
    Route("/season/guests", admin_list, methods=["GET"]),
    Route("/season/guests", admin_create, methods=["POST"]),
    Route("/season/guests/{guest}", admin_guest, methods=["GET"]),
    Route("/season/guests/{guest}", admin_edit, methods=["POST"]),
    Route("/season/guests/{guest}/photo", admin_photo, methods=["POST"]),
]
