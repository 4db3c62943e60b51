"""Producer pages: episodes, the season dashboard, per-episode reports, the timeline export.

Every page needs a signed-in host (otherwise: a redirect to the sign-in form);
the JSON/CSV endpoints answer 401 instead. Form posts must come from our own
origin (403 otherwise). Numbers come from `report.py`, pictures from
`charts.py`; this module only reads requests and renders.
"""

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, tzinfo
from urllib.parse import quote, urlencode

import orjson
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import charts, report
from ..domain import DEFAULT_COLORS, DEFAULT_SIDE_NAMES, SIDES, DomainError
from ..domain import show as dshow
from ..domain.questions import STATUSES
from ..domain.rounds import MAX_DURATION_S, MIN_DURATION_S
from ..i18n import translator
from ..node import Conflict, StoreUnavailable, now_ms
from .context import language
from .context import leitai as _leitai

Handler = Callable[[Request], Awaitable[Response]]
DEFAULT_SIDES = {k: {"name": DEFAULT_SIDE_NAMES[k], "guest": "", "org": "", "color": DEFAULT_COLORS[k]} for k in SIDES}
STATE_COLORS = {
    "pending": "#8a93a6",
    "approved": "#2f9e66",
    "featured": "#e0a100",
    "answered": "#3567d6",
    "rejected": "#d64545",
}
EXPORT_FORMATS = ("json", "csv")


leitai = _leitai


def server_tz() -> tzinfo | None:
    return datetime.now().astimezone().tzinfo


def lang_t(request: Request) -> tuple[str, Callable[[str], str]]:
    """The page language (as the app picks it) and its translator."""
    lang = language(request)
    return lang, translator(lang)


def with_lang(request: Request, path: str, **params: str) -> str:
    """A local address that keeps an explicit ?lang= choice."""
    lang = request.query_params.get("lang")
    if lang:
        params.setdefault("lang", lang)
    params = {k: v for k, v in params.items() if v}
    return path + ("?" + urlencode(params) if params else "")


# -- guards ---------------------------------------------------------------------------


def page(handler: Handler) -> Handler:
    """Signed-in pages; others go to the sign-in form and come back."""

    async def guarded(request: Request) -> Response:
        if not leitai(request).signed_in(request):
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(here, safe='/')}", status_code=303)
        try:
            return await handler(request)
        except StoreUnavailable:
            return PlainTextResponse(
                "存储暂不可用，请稍后重试 / The store is unavailable; try again shortly.",
                status_code=503,
                headers={"Retry-After": "5"},
            )

    return guarded


def form_post(handler: Handler) -> Handler:
    """Form posts: same-origin only, then signed in."""

    async def guarded(request: Request) -> Response:
        if not leitai(request).auth.origin_ok(request):
            return PlainTextResponse("cross-site form refused", status_code=403)
        return await page(handler)(request)

    return guarded


def api(handler: Handler) -> Handler:
    async def guarded(request: Request) -> Response:
        if not leitai(request).signed_in(request):
            return JSONResponse({"error": "unauthorized", "message": "sign in first"}, status_code=401)
        try:
            return await handler(request)
        except StoreUnavailable:
            return JSONResponse({"error": "unavailable"}, status_code=503)

    return guarded


# -- rendering --------------------------------------------------------------------------


def render(request: Request, name: str, status_code: int = 200, **context) -> Response:
    tz = server_tz()
    return leitai(request).render(
        request,
        name,
        status_code,
        href=lambda path, **params: with_lang(request, path, **params),
        path=request.url.path,
        fmt=report.thousands,
        clock=lambda ms, seconds=False: report.clock(ms, tz, seconds),
        stamp=lambda ms: report.stamp(ms, tz),
        duration=report.duration,
        tz_label=report.utc_offset(tz, now_ms()),
        now=now_ms(),
        **context,
    )


async def load_states(request: Request) -> list[dshow.ShowState]:
    node = leitai(request).node
    slugs = await node.list_shows()
    states = await asyncio.gather(*(node.read(slug) for slug in slugs))
    return [s for s in states if s is not None]


def viewers_now(request: Request, state: dshow.ShowState) -> int:
    """Live viewers: this process's replica ticks while it has sockets; else the store's count."""
    rt = leitai(request).node.shows.get(state.slug)
    if rt is not None and rt.room:
        return rt.state.counters.viewers
    return state.counters.viewers


async def all_stats(request: Request) -> list[report.EpisodeStats]:
    states = await load_states(request)
    return report.episode_order([report.episode_stats(s, viewers_now(request, s)) for s in states])


def headline(totals: report.SeasonTotals, t, lang: str) -> list[str]:
    return [
        t("season.hl_episodes").format(n=totals.aired),
        t("season.hl_likes").format(n=report.compact(totals.likes, lang)),
        t("season.hl_viewers").format(n=report.compact(totals.unique_sum, lang)),
    ]


# -- episodes ----------------------------------------------------------------------------------


@page
async def shows_page(request: Request) -> Response:
    stats = await all_stats(request)
    totals = report.season_totals(stats)
    lang, t = lang_t(request)
    created = request.query_params.get("created", "")
    return render(
        request,
        "shows.html",
        nav="shows",
        stats=stats,
        totals=totals,
        headline=headline(totals, t, lang),
        created=created if any(s.slug == created for s in stats) else "",
        title=t("producer.shows_title"),
    )


def blank_form() -> dict:
    return {
        "slug": "",
        "title": "",
        "date": datetime.now().strftime("%Y-%m-%d"),
        "status": "draft",
        "lang": dshow.SHOW_LANGS[0],
        "sides": {k: dict(v) for k, v in DEFAULT_SIDES.items()},
        "plan": [{"topic": "", "duration_s": 300}],
    }


def state_form(state: dshow.ShowState) -> dict:
    return {
        "slug": state.slug,
        "title": state.title,
        "date": state.date,
        "status": state.status,
        "lang": state.lang,
        "sides": state.sides or blank_form()["sides"],
        "plan": state.plan or blank_form()["plan"],
    }  # a blank row to type in; not saved if left blank


def read_form(form: FormData) -> dict:
    """The submitted episode, as typed (for redisplay); `check_form` validates it."""

    def get(name: str) -> str:
        value = form.get(name, "")
        return value.strip() if isinstance(value, str) else ""

    sides = {k: {f: get(f"{k}_{f}") for f in ("name", "guest", "org", "color", "guest_id")} for k in ("a", "b")}
    topics = [v.strip() if isinstance(v, str) else "" for v in form.getlist("plan_topic")]
    durations = [v.strip() if isinstance(v, str) else "" for v in form.getlist("plan_duration")]
    durations += [""] * (len(topics) - len(durations))
    plan = [
        {"topic": topic, "duration_s": dur} for topic, dur in zip(topics, durations) if topic or (dur and dur != "300")
    ]
    return {
        "slug": get("slug").lower(),
        "title": get("title"),
        "date": get("date"),
        "status": get("status") or "draft",
        "lang": get("lang") or dshow.SHOW_LANGS[0],
        "sides": sides,
        "plan": plan,
    }


def check_form(data: dict, t, limits) -> tuple[dict, list[str]]:
    """Clean values for the domain, and the problems in the producer's language
    (the domain's own rules: `dshow.check_episode`)."""
    plan = []
    for row in data["plan"]:
        try:
            seconds = int(row["duration_s"])
        except (TypeError, ValueError):
            seconds = -1
        plan.append({"topic": row["topic"], "duration_s": seconds})
    fields = {
        "title": data["title"],
        "date": data["date"],
        "status": data["status"],
        "lang": data["lang"],
        "sides": data["sides"],
        "plan": plan,
    }
    clean, problems = dshow.check_episode(fields, limits)
    errors = []
    for p in problems:
        params = dict(p.params)
        if "field" in params:
            params["field"] = t(f"form.side.{params['field']}")
        errors.append(t(f"form.err.{p.key}").format(**params))
    return clean, errors


async def form_page(
    request: Request, data: dict, mode: str, errors: Sequence[str] = (), status_code: int = 200, **extra
) -> Response:
    _, t = lang_t(request)
    extra["roster"] = await leitai(request).node.season.guests()  # each side may pick a roster guest
    heading = t("form.new_title") if mode == "new" else t("form.edit_title")
    return render(
        request,
        "show_form.html",
        status_code,
        nav="shows",
        form=data,
        mode=mode,
        errors=list(errors),
        statuses=dshow.SHOW_STATUSES,
        langs=dshow.SHOW_LANGS,
        title=heading,
        min_s=MIN_DURATION_S,
        max_s=MAX_DURATION_S,
        **extra,
    )


@page
async def new_form(request: Request) -> Response:
    return await form_page(request, blank_form(), "new")


@form_post
async def create(request: Request) -> Response:
    lt = leitai(request)
    _, t = lang_t(request)
    data = read_form(await request.form())
    clean, errors = check_form(data, t, lt.settings.text_limits)
    if not dshow.SLUG.match(data["slug"]):
        errors.insert(0, t("form.err.slug"))
    if errors:
        return await form_page(request, data, "new", errors, 400)
    try:
        clean["sides"] = await lt.node.season.with_guests(clean["sides"])  # a roster guest fills the side
        state = dshow.new_show(
            data["slug"],
            clean["title"],
            clean["sides"],
            clean["plan"],
            clean["date"],
            now_ms(),
            clean["status"],
            lt.settings.text_limits,
            overlay_key=secrets.token_urlsafe(12),
            lang=clean["lang"],
        )
        await lt.node.create_show(state)
    except Conflict:
        return await form_page(request, data, "new", [t("form.err.slug_taken")], 409)
    except DomainError as exc:
        return await form_page(request, data, "new", [exc.message], 400)
    return RedirectResponse(with_lang(request, "/shows", created=state.slug), status_code=303)


async def runtime(request: Request):
    return await leitai(request).node.runtime(request.path_params["show"])


def not_found(request: Request) -> Response:
    _lang, t = lang_t(request)
    return render(
        request,
        "producer_missing.html",
        404,
        nav="shows",
        slug=request.path_params["show"],
        title=t("producer.not_found"),
    )


@page
async def edit_form(request: Request) -> Response:
    rt = await runtime(request)
    if rt is None:
        return not_found(request)
    q = request.query_params
    return await form_page(request, state_form(rt.state), "edit", state=rt.state, saved=q.get("saved") == "1")


@form_post
async def save(request: Request) -> Response:
    lt = leitai(request)
    _, t = lang_t(request)
    rt = await runtime(request)
    if rt is None:
        return not_found(request)
    data = read_form(await request.form())
    data["slug"] = rt.state.slug
    clean, errors = check_form(data, t, lt.settings.text_limits)
    if errors:
        return await form_page(request, data, "edit", errors, 400, state=rt.state)
    try:
        clean["sides"] = await lt.node.season.with_guests(clean["sides"])  # a roster guest fills the side
        await lt.node.edit_show(rt.state.slug, clean)
    except DomainError as exc:
        return await form_page(
            request, data, "edit", [exc.message], 409 if exc.code == "conflict" else 400, state=rt.state
        )
    return RedirectResponse(with_lang(request, f"/shows/{rt.state.slug}/edit", saved="1"), status_code=303)


@form_post
async def reset(request: Request) -> Response:
    lt = leitai(request)
    _, t = lang_t(request)
    rt = await runtime(request)
    if rt is None:
        return not_found(request)
    form = await request.form()
    typed = form.get("confirm", "")
    slug = rt.state.slug
    if not isinstance(typed, str) or typed.strip() != slug:
        return await form_page(
            request,
            state_form(rt.state),
            "edit",
            status_code=400,
            state=rt.state,
            reset_error=t("reset.err.confirm").format(slug=slug),
        )
    try:
        await lt.node.rehearsal_reset(slug)
    except DomainError as exc:
        message = t("reset.err.open_round") if exc.code == "conflict" else exc.message
        return await form_page(
            request, state_form(rt.state), "edit", status_code=409, state=rt.state, reset_error=message
        )
    return RedirectResponse(with_lang(request, f"/shows/{slug}/report", reset="1"), status_code=303)


@page
async def show_home(request: Request) -> Response:
    return RedirectResponse(with_lang(request, f"/shows/{request.path_params['show']}/report"), status_code=303)


# -- the report -------------------------------------------------------------------------------


def side_name(state: dshow.ShowState, key: str) -> str:
    side = state.sides.get(key) or {}
    name, guest = side.get("name") or key.upper(), side.get("guest") or ""
    return f"{name} · {guest}" if guest else name


def side_color(state: dshow.ShowState, key: str) -> str:
    return (state.sides.get(key) or {}).get("color") or DEFAULT_SIDES[key]["color"]


def time_axis(points: list, tz: tzinfo | None, offset_ms: int) -> tuple:
    """Label format and tick picker for a time axis, by how long it spans."""
    xs = [x for x, y in points if y is not None]
    span = max(xs) - min(xs) if xs else 0
    if span > 20 * 3600_000:
        return (lambda x: report.stamp(int(x), tz)[5:]), charts.time_ticks(offset_ms)
    if span < 5 * 60_000:
        return (lambda x: report.clock(int(x), tz, seconds=True)), charts.time_ticks(offset_ms, most=5)
    return (lambda x: report.clock(int(x), tz)), charts.time_ticks(offset_ms)


def timeline_charts(state: dshow.ShowState, rep: report.Report, t, tz: tzinfo | None) -> tuple[str, str]:
    """Likes per minute per side, and viewers over time."""
    off = datetime.now(tz).utcoffset()
    offset_ms = int(off.total_seconds() * 1000) if off else 0
    minute_points = [p for pts in rep.likes_per_minute.values() for p in pts]
    likes_format, _ = time_axis(minute_points, tz, offset_ms)
    if len({x for x, y in minute_points if y is not None}) < 10:
        likes_format = lambda x: report.clock(int(x), tz)  # noqa: E731 - whole minutes
    viewers_format, viewers_ticks = time_axis(rep.viewers, tz, offset_ms)
    likes = charts.line_chart(
        [charts.Series(side_name(state, k), side_color(state, k), rep.likes_per_minute[k]) for k in ("a", "b")],
        title=t("report.chart.likes"),
        y_label=t("report.axis.likes_per_min"),
        empty=t("report.no_samples"),
        x_format=likes_format,
        x_ticks=charts.time_ticks(offset_ms, min_step_ms=60_000),
        pad=60_000,
        width=1180,
        height=320,
        css="chart line-chart likes-chart",
    )
    viewers = charts.line_chart(
        [charts.Series(t("report.viewers"), "#3b4a6b", rep.viewers)],
        title=t("report.chart.viewers"),
        y_label=t("report.axis.viewers"),
        empty=t("report.no_samples"),
        x_format=viewers_format,
        area=True,
        x_ticks=viewers_ticks,
        pad=30_000,
        width=560,
        css="chart line-chart viewers-chart",
    )
    return likes, viewers


def report_charts(state: dshow.ShowState, rep: report.Report, t) -> dict[str, Markup]:
    """The report's four SVG charts (charts.py escapes all text, so they are safe markup)."""
    likes, viewers = timeline_charts(state, rep, t, server_tz())
    groups = [
        t("round.n").format(n=r.index) + ("" if r.status == "finished" else " · " + t("report.live_round"))
        for r in rep.rounds
    ]
    votes = charts.bar_chart(
        groups,
        [
            charts.Series(side_name(state, k), side_color(state, k), values=[r.votes.get(k, 0) for r in rep.rounds])
            for k in ("a", "b")
        ],
        title=t("report.chart.votes"),
        y_label=t("report.axis.votes"),
        empty=t("report.no_rounds"),
        badges=[{"a": "0", "b": "1"}.get(r.winner or "") for r in rep.rounds],
        badge_text=t("report.won"),
        width=560,
        css="chart bar-chart votes-chart",
    )
    questions = charts.hbar_chart(
        [charts.Bar(t(f"q.{s}"), rep.by_state.get(s, 0), STATE_COLORS[s]) for s in STATUSES],
        title=t("report.chart.questions"),
        empty=t("report.no_questions"),
        width=1180,
        css="chart hbar-chart questions-chart",
    )
    return {"likes": Markup(likes), "viewers": Markup(viewers), "votes": Markup(votes), "questions": Markup(questions)}


@page
async def report_page(request: Request) -> Response:
    lt = leitai(request)
    slug = request.path_params["show"]
    state = await lt.node.read(slug)
    if state is None:
        return not_found(request)
    timeline = await lt.node.timeline(slug)
    rep = report.build(state, timeline, now_ms(), lt.settings.sample_s * 1000)
    rep.stats = report.episode_stats(state, viewers_now(request, state))
    _, t = lang_t(request)
    return render(
        request,
        "report.html",
        nav="shows",
        state=state,
        rep=rep,
        stats=rep.stats,
        charts=report_charts(state, rep, t),
        title=state.title,
        just_reset=request.query_params.get("reset") == "1",
        sides=[(k, state.sides.get(k) or DEFAULT_SIDES[k]) for k in ("a", "b")],
    )


# -- the season ---------------------------------------------------------------------------------


def season_charts(stats: list[report.EpisodeStats], t) -> dict[str, Markup]:
    aired = list(reversed([s for s in stats if s.aired]))[-16:]  # oldest first, the last 16
    labels = [s.date[5:] if s.date else s.slug for s in aired]
    likes = charts.bar_chart(
        labels,
        [charts.Series(t("season.likes"), DEFAULT_COLORS["a"], values=[s.likes_total for s in aired])],
        title=t("season.chart.likes"),
        y_label=t("season.likes"),
        empty=t("season.no_episodes"),
        css="chart bar-chart season-likes",
        width=560,
        height=280,
    )
    viewers = charts.bar_chart(
        labels,
        [charts.Series(t("season.peak"), DEFAULT_COLORS["b"], values=[s.peak_viewers for s in aired])],
        title=t("season.chart.viewers"),
        y_label=t("season.peak"),
        empty=t("season.no_episodes"),
        css="chart bar-chart season-viewers",
        width=560,
        height=280,
    )
    return {"likes": Markup(likes), "viewers": Markup(viewers)}


@page
async def season_page(request: Request) -> Response:
    stats = await all_stats(request)
    totals = report.season_totals(stats)
    lang, t = lang_t(request)
    return render(
        request,
        "season.html",
        nav="season",
        stats=stats,
        totals=totals,
        headline=headline(totals, t, lang),
        charts=season_charts(stats, t),
        compact=lambda n: report.compact(n, lang),
        title=t("season.title"),
        season_counts=await leitai(request).node.season.counts(),  # talks sent, roster, polls (web/season/)
    )


def stats_json(s: report.EpisodeStats) -> dict:
    return {
        "slug": s.slug,
        "title": s.title,
        "date": s.date,
        "status": s.status,
        "likes": s.likes,
        "likes_total": s.likes_total,
        "viewers": s.viewers,
        "peak_viewers": s.peak_viewers,
        "unique_viewers": s.unique_viewers,
        "votes": s.votes,
        "rounds": s.rounds,
        "rounds_won": s.rounds_won,
        "questions": s.questions,
        "received": s.received,
        "approved": s.approved,
        "answered": s.answered,
        "rehearsal": s.rehearsal,
    }


@api
async def api_season(request: Request) -> Response:
    stats = await all_stats(request)
    totals = report.season_totals(stats)
    body = {"totals": totals.__dict__, "episodes": [stats_json(s) for s in stats]}
    return Response(orjson.dumps(body), media_type="application/json")


# -- the export --------------------------------------------------------------------------------------


@api
async def export(request: Request) -> Response:
    lt = leitai(request)
    slug = request.path_params["show"]
    fmt = request.query_params.get("format", "json")
    if fmt not in EXPORT_FORMATS:
        return JSONResponse({"error": "invalid", "message": "format must be json or csv"}, status_code=400)
    state = await lt.node.read(slug)
    if state is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    entries = report.export_entries(await lt.node.timeline(slug))
    now = now_ms()
    name = f"leitai-{slug}-timeline-{datetime.now().strftime('%Y%m%d-%H%M')}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    if fmt == "csv":
        # a byte-order mark so that spreadsheet programs read the Chinese text as UTF-8
        return Response("\ufeff" + report.to_csv(entries), media_type="text/csv; charset=utf-8", headers=headers)
    body = {
        "show": {
            "slug": state.slug,
            "title": state.title,
            "date": state.date,
            "status": state.status,
            "sides": state.sides,
            "rehearsal": state.rehearsal,
        },
        "exported": report.iso_utc(now),
        "seq": state.seq,
        "entries": entries,
    }
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


routes = [
    Route("/shows", shows_page, methods=["GET"]),
    Route("/shows/new", new_form, methods=["GET"]),
    Route("/shows/new", create, methods=["POST"]),
    Route("/shows/{show}", show_home, methods=["GET"]),
    Route("/shows/{show}/edit", edit_form, methods=["GET"]),
    Route("/shows/{show}/edit", save, methods=["POST"]),
    Route("/shows/{show}/reset", reset, methods=["POST"]),
    Route("/shows/{show}/report", report_page, methods=["GET"]),
    Route("/season", season_page, methods=["GET"]),
    Route("/api/season", api_season, methods=["GET"]),
    Route("/api/shows/{show}/export", export, methods=["GET"]),
]
