"""What the season's routes share: reading JSON and forms, the error answers of the
SPEC ("The season"), the sign-in and origin rules, and page rendering for the
public (phone-first) pages and the producer pages.

Errors: `400 {"error": "invalid", "fields": {name: message}}`, `401` not signed
in, `403` another origin, `404` unknown id, `409 {"error": "conflict"}`, `429`
a budget spent, `503` the store unreachable.
"""

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import orjson
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from ... import report
from ...domain import DomainError
from ...domain.fields import Invalid
from ...i18n import Translator
from ...i18n import translator as make_translator
from ...node import Conflict, StateLost, StoreUnavailable
from ...node.season import Season
from ...node.talks import Limited
from ..context import Leitai, language
from ..context import leitai as _leitai
from ..producer import render as producer_render
from ..producer import server_tz, with_lang
from ..security import SESSION_COOKIE, client_ip, holder_of_session

Handler = Callable[[Request], Awaitable[Response]]
BY_COOKIE = "lt_by"  # the name a producer signs workflow changes with (remembered)

leitai = _leitai


def season(request: Request) -> Season:
    return leitai(request).node.season


def ip(request: Request) -> str:
    return client_ip(request.scope)


def translator(request: Request) -> Translator:
    """`t(key)` in the page's language."""
    return make_translator(language(request))


# -- answers -------------------------------------------------------------------------------


def json(body: Any, status: int = 200, cache: str = "no-store") -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers={"Cache-Control": cache}
    )


def error(status: int, code: str, message: str = "", **extra: Any) -> Response:
    body: dict[str, Any] = {"error": code, **({"message": message} if message else {}), **extra}
    headers = {"Retry-After": str(int(extra["retry_ms"] / 1000) + 1)} if "retry_ms" in extra else None
    return JSONResponse(body, status_code=status, headers=headers)


def invalid(fields: dict[str, str]) -> Response:
    return error(400, "invalid", next(iter(fields.values()), ""), fields=fields)


def problem_answer(exc: Exception) -> Response:
    """The SPEC's answer to a refused command."""
    if isinstance(exc, Invalid):
        return invalid(exc.fields())
    if isinstance(exc, Conflict):
        return error(409, "conflict", "changed meanwhile; reload and try again")
    if isinstance(exc, Limited):
        return error(429, "rate_limited", str(exc), retry_ms=int(exc.retry_s * 1000))
    if isinstance(exc, StateLost):
        return error(503, "unavailable", str(exc))
    if isinstance(exc, StoreUnavailable):
        return error(503, "unavailable", "try again shortly", retry_ms=2000)
    if isinstance(exc, DomainError):
        if exc.code == "invalid":
            return invalid({exc.field or "body": exc.message})
        return error({"not_found": 404, "conflict": 409}.get(exc.code, 400), exc.code, exc.message)
    raise exc


async def body_of(request: Request) -> dict[str, Any]:
    """The JSON object of a POST; DomainError("invalid") if it is not one."""
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise DomainError("invalid", "the body must be JSON", "body") from None
    if not isinstance(data, dict):
        raise DomainError("invalid", "the body must be a JSON object", "body")
    return data


def form_dict(form: FormData, lists: tuple[str, ...] = ()) -> dict[str, Any]:
    """A form as a plain dict of text (fields named in `lists` as lists)."""
    out: dict[str, Any] = {}
    for key in form:
        if key in lists:
            out[key] = [v for v in form.getlist(key) if isinstance(v, str) and v]
        else:
            value = form.get(key)
            out[key] = value if isinstance(value, str) else ""
    return out


# -- who may -------------------------------------------------------------------------------


def signed_in(request: Request) -> bool:
    return leitai(request).signed_in(request)


def same_origin(request: Request) -> bool:
    lt: Leitai = leitai(request)
    return lt.auth.origin_ok(request)


def api(signed: bool = False, post: bool = False) -> Callable[[Handler], Handler]:
    """A JSON route: POSTs from our own origin only (403), signed in if `signed` (401);
    refused commands answered as the SPEC says."""

    def wrap(handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            if post and not same_origin(request):
                return error(403, "forbidden", "origin not allowed")
            if signed and not signed_in(request):  # guard: producers only
                return error(401, "unauthorized", "sign in first")
            try:
                return await handler(request)
            except (Invalid, DomainError, Conflict, Limited, StoreUnavailable) as exc:
                return problem_answer(exc)

        return guarded

    return wrap


def remembered_by(request: Request) -> str:
    """The name this producer last signed a workflow change with (a cookie)."""
    return unquote(request.cookies.get(BY_COOKIE, ""))[:40]


def who(request: Request, typed: str = "") -> str:
    """Who made a workflow change: the name they typed (or last typed), else their session."""
    name = " ".join(str(typed or remembered_by(request)).split())[:40]
    return name or holder_of_session(request.cookies.get(SESSION_COOKIE, ""))


def unavailable_page() -> Response:
    return PlainTextResponse(
        "存储暂不可用，请稍后重试 / The store is unavailable; try again shortly.",
        status_code=503,
        headers={"Retry-After": "5"},
    )


# -- pages -----------------------------------------------------------------------------------


def field_errors(exc: Exception, t: Translator) -> dict[str, str]:
    """{field: message in the page's language} for a form."""
    problems = exc.problems if isinstance(exc, Invalid) else [exc] if isinstance(exc, DomainError) else []
    out: dict[str, str] = {}
    for p in problems:
        if p.field and p.field not in out:
            text = t(f"field.err.{p.key}") if p.key else ""
            out[p.field] = text.format(**p.params) if text and not text.startswith("field.err.") else p.message
    return out


def page_context(request: Request) -> dict[str, Any]:
    tz = server_tz()
    return {
        "href": lambda path, **params: with_lang(request, path, **params),
        "path": request.url.path,
        "fmt": report.thousands,
        "stamp": lambda ms: report.stamp(ms, tz),
        "pct": lambda x: f"{x * 100:.0f}%",
    }


def public_page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """A public, phone-first page (templates/season_base.html)."""
    lt = leitai(request)
    retention = lt.settings.contact_retention_days
    return lt.render(request, name, status_code, **page_context(request), retention_days=retention, **context)


def producer_page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """A producer page (templates/producer_base.html), with the producer pages' helpers."""
    context.setdefault("pct", lambda x: f"{x * 100:.0f}%")
    return producer_render(request, name, status_code, **context)
