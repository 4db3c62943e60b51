"""Producer pages: episodes (create, edit, rehearsal reset), season totals, per-show
report, timeline export; the pure report and chart modules; and the report and
season pages in a real Chromium."""

import csv
import io
import itertools
import json
import os
import re
import shutil
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from conftest import TOKEN, Clients, Server, create_show, device_cookie, host_cookies, wait_until

from server import charts, report
from server.domain.questions import Question
from server.domain.show import ShowState, new_show

SIDES = {
    "a": {"name": "红方", "guest": "王伟", "org": "澳洋医院", "color": "#d7263d"},
    "b": {"name": "蓝方", "guest": "杨玭", "org": "公益组织联合会", "color": "#1b6fd1"},
}
XSS = "<script>alert(1)</script>"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def sampling():
    """A server of this module's own that samples the counters every second (its phones
    tap faster than people do, to fill the charts quickly)."""
    srv = Server(SAMPLE_S="1", LIKE_RATE="1000", LIKE_BURST="1000").start()
    yield srv
    srv.cleanup()


def signed_in(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, cookies=host_cookies(base), follow_redirects=False)


def form_body(
    slug: str = "",
    title: str = "第16期 · 书记PK",
    status: str = "draft",
    date: str = "2026-03-05",
    plan: list[tuple[str, str]] = (("社会治理：怎样让群众少跑腿", "300"),),
    **sides,
) -> dict:
    """The fields the episode form posts (repeated plan fields as lists)."""
    body: dict = {"slug": slug, "title": title, "date": date, "status": status}
    for key in ("a", "b"):
        side = {**SIDES[key], **sides.get(key, {})}
        body.update({f"{key}_{f}": side[f] for f in ("name", "guest", "org", "color")})
    body["plan_topic"] = [topic for topic, _ in plan]
    body["plan_duration"] = [dur for _, dur in plan]
    return body


def snapshot(base: str, slug: str) -> dict:
    r = httpx.get(f"{base}/api/shows/{slug}", cookies=host_cookies(base))  # drafts are for hosts only
    assert r.status_code == 200, r.text
    return r.json()["show"]


def season(base: str) -> dict:
    with signed_in(base) as http:
        r = http.get("/api/season")
        assert r.status_code == 200, r.text
        return r.json()


def episode(base: str, slug: str) -> dict:
    return next(e for e in season(base)["episodes"] if e["slug"] == slug)


async def likes_flushed(base: str, slug: str, expect: dict) -> None:
    await wait_until(lambda: snapshot(base, slug)["tally"]["likes"] == expect, timeout=5)


# -- sign-in ----------------------------------------------------------------------------------


def test_pages_redirect_to_sign_in_and_apis_answer_401(server):
    slug = create_show(server.url)
    with httpx.Client(base_url=server.url, follow_redirects=False) as http:
        for path in (
            "/shows",
            "/season",
            "/shows/new",
            f"/shows/{slug}/edit",
            f"/shows/{slug}/report",
            f"/shows/{slug}/report?lang=en",
            f"/shows/{slug}",
        ):
            r = http.get(path)
            assert r.status_code == 303, path
            target = urlsplit(r.headers["location"])
            assert target.path == "/login"
            assert parse_qs(target.query)["next"] == [path]
        for path in ("/api/season", f"/api/shows/{slug}/export", f"/api/shows/{slug}/export?format=csv"):
            r = http.get(path)
            assert r.status_code == 401, path
            assert r.json()["error"] == "unauthorized"
        # a form post without a session goes to the sign-in form and changes nothing
        r = http.post(f"/shows/{slug}/edit", data=form_body(title="hijacked"), headers={"Origin": server.url})
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
        r = http.post(f"/shows/{slug}/reset", data={"confirm": slug}, headers={"Origin": server.url})
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert snapshot(server.url, slug)["title"] == "测试节目"


def test_sign_in_form_leads_back_to_the_page(server):
    with httpx.Client(base_url=server.url, follow_redirects=False) as http:
        r = http.get("/season")
        next_url = parse_qs(urlsplit(r.headers["location"]).query)["next"][0]
        r = http.post("/login", data={"token": TOKEN, "next": next_url})
        assert r.status_code == 303 and r.headers["location"] == "/season"
        assert http.get("/season").status_code == 200


# -- episodes: create, edit ------------------------------------------------------------------------


def test_episode_list_links_every_page(server):
    slug = create_show(server.url, title="列表里的节目")
    with signed_in(server.url) as http:
        r = http.get("/shows")
        assert r.status_code == 200
        html = r.text
    assert "列表里的节目" in html
    for href in (
        f"/console/{slug}",
        f"/overlay/{slug}",
        f"/s/{slug}",
        f"/shows/{slug}/report",
        f"/shows/{slug}/edit",
        "/shows/new",
        "/season",
    ):
        assert f'href="{href}' in html, href
    assert "直播中" in html  # status, zh-CN by default
    with signed_in(server.url) as http:
        assert "Live" in http.get("/shows?lang=en").text


def test_create_episode_with_the_form(server):
    slug = f"ep-form-{os.getpid()}"
    with signed_in(server.url) as http:
        assert 'name="plan_topic"' in http.get("/shows/new").text
        body = form_body(
            slug,
            plan=[("第一轮：社会治理", "300"), ("", "300"), ("第二轮：服务群众", "240")],
            a={"color": "#aa0011", "guest": "王伟"},
        )
        r = http.post("/shows/new", data=body, headers={"Origin": server.url})
        assert r.status_code == 303, r.text
        assert r.headers["location"] == f"/shows?created={slug}"
        assert slug in http.get(r.headers["location"]).text
    show = snapshot(server.url, slug)
    assert show["title"] == "第16期 · 书记PK"
    assert show["status"] == "draft"
    assert show["date"] == "2026-03-05"
    assert show["sides"]["a"] == {**SIDES["a"], "color": "#aa0011"}
    assert show["plan"] == [
        {"topic": "第一轮：社会治理", "duration_s": 300},
        {"topic": "第二轮：服务群众", "duration_s": 240},
    ]  # the blank row is dropped


def test_create_refuses_other_origins_and_bad_input(server):
    with signed_in(server.url) as http:
        slug = f"ep-evil-{os.getpid()}"
        r = http.post("/shows/new", data=form_body(slug), headers={"Origin": "https://evil.example"})
        assert r.status_code == 403
        r = http.post("/shows/new", data=form_body(slug), headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403
        assert httpx.get(f"{server.url}/api/shows/{slug}").status_code == 404
        # bad slug: the form comes back with the typed values and the reason
        r = http.post("/shows/new", data=form_body("Bad Slug!", title="保留我"), headers={"Origin": server.url})
        assert r.status_code == 400
        assert "节目代号只能包含" in r.text and 'value="保留我"' in r.text
        # duration out of range
        r = http.post(
            "/shows/new", data=form_body(f"ep-dur-{os.getpid()}", plan=[("辩题", "5")]), headers={"Origin": server.url}
        )
        assert r.status_code == 400 and "第 1 轮" in r.text
        # a taken slug
        taken = create_show(server.url)
        r = http.post("/shows/new", data=form_body(taken), headers={"Origin": server.url})
        assert r.status_code == 409 and "已被使用" in r.text


async def test_edit_episode_with_the_form(server, clients: Clients):
    slug = create_show(server.url, plan=[{"topic": "旧辩题", "duration_s": 300}])
    overlay = await clients.overlay(slug)
    with signed_in(server.url) as http:
        r = http.get(f"/shows/{slug}/edit")
        assert r.status_code == 200
        assert 'value="旧辩题"' in r.text and 'type="color"' in r.text
        body = form_body(
            title="改过的标题",
            status="ended",
            date="2026-04-01",
            plan=[("新的第一轮", "180"), ("新的第二轮", "600")],
            b={"name": "蓝队", "color": "#00aa55"},
        )
        # another origin: refused, nothing changes
        assert http.post(f"/shows/{slug}/edit", data=body, headers={"Origin": "http://evil.example"}).status_code == 403
        assert snapshot(server.url, slug)["title"] == "测试节目"
        r = http.post(f"/shows/{slug}/edit", data=body, headers={"Origin": server.url})
        assert r.status_code == 303 and r.headers["location"] == f"/shows/{slug}/edit?saved=1"
        assert "已保存" in http.get(r.headers["location"]).text
    show = snapshot(server.url, slug)
    assert (show["title"], show["status"], show["date"]) == ("改过的标题", "ended", "2026-04-01")
    assert show["sides"]["b"]["name"] == "蓝队" and show["sides"]["b"]["color"] == "#00aa55"
    assert show["plan"] == [{"topic": "新的第一轮", "duration_s": 180}, {"topic": "新的第二轮", "duration_s": 600}]
    # screens see the change at once, as a `show` frame
    frame = await overlay.wait_for(lambda f: f["type"] == "show" and "title" in f["show"])
    assert frame["show"]["title"] == "改过的标题"
    # a bad edit changes nothing and says why
    with signed_in(server.url) as http:
        r = http.post(
            f"/shows/{slug}/edit", data=form_body(title="", b={"color": "blue"}), headers={"Origin": server.url}
        )
        assert r.status_code == 400 and "请填写节目标题" in r.text and "#rrggbb" in r.text
        assert http.get("/shows/no-such-show/edit").status_code == 404
    assert snapshot(server.url, slug)["title"] == "改过的标题"


# -- rehearsal reset ------------------------------------------------------------------------------------


async def test_rehearsal_reset_needs_the_slug_and_zeroes_the_counters(server, clients: Clients):
    slug = create_show(server.url)
    console = await clients.console(slug)
    phone = await clients.audience(slug)
    await phone.send({"type": "like", "side": "a", "count": 9})
    assert (await console.request({"type": "round.start", "topic": "彩排", "duration_s": 60}))["type"] == "ack"
    assert (await phone.request({"type": "vote", "side": "b"}))["type"] == "ack"
    assert (await console.request({"type": "points.set", "side": "a", "points": 5}))["type"] == "ack"
    await likes_flushed(server.url, slug, {"a": 9, "b": 0})

    with signed_in(server.url) as http:
        # a round is open: the reset is refused, with the reason
        r = http.post(f"/shows/{slug}/reset", data={"confirm": slug}, headers={"Origin": server.url})
        assert r.status_code == 409 and "请先在控制台结束本轮" in r.text
        assert (await console.request({"type": "round.end"}))["type"] == "ack"
        # the wrong confirmation, none, or another origin: nothing happens
        for data, headers, code in (
            ({"confirm": slug + "x"}, {"Origin": server.url}, 400),
            ({}, {"Origin": server.url}, 400),
            ({"confirm": slug}, {"Origin": "https://evil.example"}, 403),
        ):
            r = http.post(f"/shows/{slug}/reset", data=data, headers=headers)
            assert r.status_code == code
        assert (
            "确认内容不一致"
            in http.post(f"/shows/{slug}/reset", data={"confirm": "demo"}, headers={"Origin": server.url}).text
        )
        before = snapshot(server.url, slug)
        assert before["tally"]["likes"]["a"] == 9 and before["tally"]["points"]["a"] == 5
        assert before["rounds"][0]["votes"] == {"a": 0, "b": 1}
        assert not before["rehearsal"]
        await phone.close()  # so the peak stays at zero after the reset

        r = http.post(f"/shows/{slug}/reset", data={"confirm": slug}, headers={"Origin": server.url})
        assert r.status_code == 303 and r.headers["location"] == f"/shows/{slug}/report?reset=1"
        after = await wait_until(lambda: (s := snapshot(server.url, slug))["tally"]["likes"]["a"] == 0 and s)
        assert after["tally"]["likes"] == {"a": 0, "b": 0}
        assert after["tally"]["votes"] == {"a": 0, "b": 0}
        assert after["tally"]["points"] == {"a": 0, "b": 0}
        assert after["tally"]["rounds_won"] == {"a": 0, "b": 0}
        assert after["rounds"] == [] and after["round"]["index"] == 0
        assert after["tally"]["peak_viewers"] == 0 and after["tally"]["unique_viewers"] == 0
        assert after["rehearsal"] > 0
        e = episode(server.url, slug)
        assert (e["likes_total"], e["votes"], e["rehearsal"]) == (0, 0, after["rehearsal"])

        # the report says so, and the timeline holds the reset event
        page = http.get(r.headers["location"]).text
        assert 'id="reset-note"' in page and "彩排重置" in page
        assert "已完成彩排重置" in page
        entries = http.get(f"/api/shows/{slug}/export").json()["entries"]
        resets = [e for e in entries if e["type"] == "show" and e["show"].get("rehearsal")]
        assert len(resets) == 1 and resets[0]["show"]["rehearsal"] == after["rehearsal"]
        # the edit page shows when the last reset was
        assert "上次重置" in http.get(f"/shows/{slug}/edit").text
    # the console saw the zeroed points and the reset round
    await console.wait_for(lambda f: f["type"] == "points" and f["points"] == {"a": 0, "b": 0})


# -- season totals ----------------------------------------------------------------------------------------


async def test_season_totals_from_a_show_driven_through_sockets(fresh_server):
    srv = fresh_server()
    base = srv.url
    made = Clients(srv)
    try:
        slug = create_show(base, "season-one", date="2026-05-01")
        draft = create_show(base, "season-draft", status="draft", date="2026-05-08")
        console = await made.console(slug)
        phones = [await made.audience(slug) for _ in range(3)]
        # likes: a 30, b 12
        for p, (a, b) in zip(phones, ((10, 4), (15, 0), (5, 8))):
            await p.send({"type": "like", "side": "a", "count": a})
            if b:
                await p.send({"type": "like", "side": "b", "count": b})
        # round 1: two votes for a, one for b (one phone changes its mind), then ended
        assert (await console.request({"type": "round.start", "topic": "第一轮", "duration_s": 120}))["type"] == "ack"
        for p, side in zip(phones, "aba"):
            assert (await p.request({"type": "vote", "side": side}))["type"] == "ack"
        assert (await phones[1].request({"type": "vote", "side": "b"}))["type"] == "ack"
        assert (await console.request({"type": "round.end"}))["type"] == "ack"
        # round 2 stays open with one vote so far: it counts too
        assert (await console.request({"type": "round.start", "topic": "第二轮", "duration_s": 120}))["type"] == "ack"
        assert (await phones[2].request({"type": "vote", "side": "b"}))["type"] == "ack"
        # questions: one approved, one answered (approved first), one rejected
        ids = []
        for i, p in enumerate(phones):
            ack = await p.request({"type": "ask", "text": f"问题{i}", "name": ""})
            ids.append(ack["question"])
        for action, qid in (("approve", ids[0]), ("approve", ids[1]), ("answered", ids[1]), ("reject", ids[2])):
            assert (await console.request({"type": f"question.{action}", "question": qid}))["type"] == "ack"
        # a draft's numbers are listed but not counted
        host = host_cookies(base)["lt_session"]  # a draft is not public: a host's phone, previewing
        dev = device_cookie(base, draft, headers={"Cookie": f"lt_session={host}"})
        stray = await made.audience(draft, cookie=f"{dev}; lt_session={host}")
        await stray.send({"type": "like", "side": "b", "count": 7})
        await likes_flushed(base, slug, {"a": 30, "b": 12})
        await likes_flushed(base, draft, {"a": 0, "b": 7})
        await wait_until(lambda: episode(base, slug)["peak_viewers"] == 3)

        one = episode(base, slug)
        assert one["likes"] == {"a": 30, "b": 12}
        assert one["votes"] == 3 + 1
        assert (one["peak_viewers"], one["unique_viewers"]) == (3, 3)
        assert (one["received"], one["approved"], one["answered"]) == (3, 2, 1)
        assert one["rounds_won"] == {"a": 1, "b": 0}

        data = season(base)
        demo = next(e for e in data["episodes"] if e["slug"] == "demo")  # a fresh server makes it
        assert demo["status"] == "live" and demo["likes_total"] == 0
        totals = data["totals"]
        assert totals["episodes"] == 3 and totals["aired"] == 2  # the draft is not aired
        assert totals["likes"] == 42  # the draft's 7 are left out
        assert totals["peak_max"] == 3 and totals["peak_sum"] == 3 + demo["peak_viewers"]
        assert totals["unique_sum"] == 3 + demo["unique_viewers"]
        assert totals["votes"] == 4
        assert totals["received"] == 3 + demo["received"]
        assert totals["approved"] == 2 + demo["approved"]
        assert totals["answered"] == 1 + demo["answered"]

        # the dashboard shows the same numbers
        with signed_in(base) as http:
            html = http.get("/season").text
            en = http.get("/season?lang=en").text
        assert re.search(r'data-total="likes">42<', html)
        assert re.search(r'data-total="votes">4<', html)
        assert re.search(r'data-total="aired">2<', html)
        assert re.search(r'data-total="peak_max">3<', html)
        assert "2 期" in html and "42 点赞" in html
        assert "2 episodes" in en and "42 likes" in en
        assert html.count('<tr data-slug="') == 3
        assert 'class="data sortable season-table"' in html
    finally:
        await made.close()


# -- report -------------------------------------------------------------------------------------------------


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def timeline(base: str, slug: str) -> list[dict]:
    """The show's timeline as the export gives it (events and samples)."""
    with signed_in(base) as http:
        r = http.get(f"/api/shows/{slug}/export?format=json")
        assert r.status_code == 200, r.text
        return r.json()["entries"]


def samples(base: str, slug: str, round_index: int) -> list[dict]:
    return [e for e in timeline(base, slug) if e["type"] == "sample" and e["round"] == round_index]


async def drive_show(srv: Server, slug: str, samples_in_round_1: int = 3) -> dict[str, str]:
    """Likes, viewers, a finished round, a running one and questions in every state,
    until the server has sampled the counters a few times in the first round and once
    with the second round's vote."""
    made = Clients(srv)
    try:
        console = await made.console(slug)
        phones = [await made.audience(slug) for _ in range(3)]  # one question per phone (rate limit)
        ids = {}
        start = {"type": "round.start", "topic": "第一轮：<社会治理>", "duration_s": 60}
        assert (await console.request(start))["type"] == "ack"
        for i, text in enumerate((XSS, "普通的问题", "要拒绝的问题")):
            ack = await phones[i].request({"type": "ask", "text": text, "name": "小王" if i else "<b>黑客</b>"})
            ids[text] = ack["question"]
            # distinct creation times: the question was stamped before its ack arrived, so
            # the next one is stamped later once this clock (the server's too) moves on a ms
            acked = now_ms()
            await wait_until(lambda acked=acked: now_ms() > acked, timeout=1, interval=0.001)
        await console.request({"type": "question.approve", "question": ids[XSS]})
        await console.request({"type": "question.feature", "question": ids["普通的问题"]})
        await console.request({"type": "question.reject", "question": ids["要拒绝的问题"]})
        await phones[0].request({"type": "vote", "side": "a"})
        await phones[1].request({"type": "vote", "side": "a"})
        likes = {"a": 0, "b": 0}

        async def beat() -> bool:
            """Likes from two phones, until a tick has counted them; enough samples yet?"""
            seen = len(console.frames)
            await phones[0].send({"type": "like", "side": "a", "count": 5})
            await phones[1].send({"type": "like", "side": "b", "count": 3})
            likes["a"] += 5
            likes["b"] += 3
            await console.wait_for(lambda f: f["type"] == "tally" and f["likes"] == likes, start=seen)
            return len(samples(srv.url, slug, 1)) >= samples_in_round_1

        await wait_until(beat, timeout=30, interval=0)
        assert (await console.request({"type": "round.end"}))["type"] == "ack"
        assert (await console.request({"type": "round.start", "topic": "第二轮", "duration_s": 60}))["type"] == "ack"
        assert (await phones[1].request({"type": "vote", "side": "b"}))["type"] == "ack"
        # one more sample, with the second round's vote in it
        await wait_until(lambda: any(e["votes"] == {"a": 0, "b": 1} for e in samples(srv.url, slug, 2)), timeout=15)
        return ids
    finally:
        await made.close()


async def test_report_has_charts_tables_and_escaped_text(sampling):
    base = sampling.url
    slug = create_show(
        base,
        sides={
            "a": {"name": "<b>红</b>", "guest": "王伟", "color": "#d7263d"},
            "b": {"name": "蓝方", "guest": "杨玭", "color": "#1b6fd1"},
        },
        title="报告 <i>测试</i>",
    )
    await drive_show(sampling, slug)
    with signed_in(base) as http:
        r = http.get(f"/shows/{slug}/report")
        assert r.status_code == 200
        html = r.text
        assert http.get("/shows/no-such-show/report").status_code == 404
    # four server-rendered charts, with data in them
    for css in ("likes-chart", "viewers-chart", "votes-chart", "questions-chart"):
        m = re.search(rf'<svg [^>]*class="chart [^"]*{css}"[^>]*viewBox="0 0 \d+ \d+"', html)
        assert m, css
    likes_svg = re.search(r"<svg [^>]*likes-chart.*?</svg>", html, re.S).group(0)
    assert "<polyline" in likes_svg or "<circle" in likes_svg
    assert 'stroke="#d7263d"' in likes_svg or 'fill="#d7263d"' in likes_svg
    votes_svg = re.search(r"<svg [^>]*votes-chart.*?</svg>", html, re.S).group(0)
    assert votes_svg.count('class="bar"') == 4  # two rounds, two sides
    assert 'class="badge"' in votes_svg  # round 1's winner
    # user text is text: escaped in the tables, the title and inside the SVG
    assert XSS not in html and "<b>黑客</b>" not in html and "<b>红</b>" not in html and "<i>测试</i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;黑客&lt;/b&gt;" in html
    assert "&lt;b&gt;红&lt;/b&gt;" in likes_svg
    assert "报告 &lt;i&gt;测试&lt;/i&gt;" in html
    assert "第一轮：&lt;社会治理&gt;" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # only external scripts
    assert " style=" not in html and "<style" not in html  # the CSP forbids inline styles
    # tables: both rounds, every question with its state
    rounds = re.search(r'<table class="data rounds".*?</table>', html, re.S).group(0)
    assert rounds.count("<tr>") == 3  # header + 2 rounds
    assert "进行中" in rounds
    questions = re.search(r'<table class="data sortable questions".*?</table>', html, re.S).group(0)
    for state in ("approved", "featured", "rejected"):
        assert f'data-status="{state}"' in questions
    # the KPI numbers agree with the season API
    e = episode(base, slug)
    assert f">{e['likes_total']:,}<" in html
    assert e["votes"] == 3 and e["received"] == 3 and e["approved"] == 2
    # English too
    with signed_in(base) as http:
        en = http.get(f"/shows/{slug}/report?lang=en").text
    assert "Likes per minute" in en and "Votes per round" in en


# -- export -----------------------------------------------------------------------------------------------------


async def test_export_json_and_csv_round_trip(sampling):
    base = sampling.url
    slug = create_show(base)
    made = Clients(sampling)
    try:
        console = await made.console(slug)
        await drive_show(sampling, slug, samples_in_round_1=2)
        await console.wait_for(lambda f: f["type"] == "round" and f["round"]["index"] == 2)
    finally:
        await made.close()
    seen = {f["seq"]: f["type"] for f in console.frames if f["type"] in ("question", "round", "show", "points")}
    with signed_in(base) as http:
        r = http.get(f"/api/shows/{slug}/export?format=json")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        assert re.match(
            rf'attachment; filename="leitai-{slug}-timeline-\d{{8}}-\d{{4}}\.json"', r.headers["content-disposition"]
        )
        body = r.json()
        c = http.get(f"/api/shows/{slug}/export?format=csv")
        assert c.status_code == 200
        assert c.headers["content-type"].startswith("text/csv")
        assert re.match(
            rf'attachment; filename="leitai-{slug}-timeline-\d{{8}}-\d{{4}}\.csv"', c.headers["content-disposition"]
        )
        assert http.get(f"/api/shows/{slug}/export?format=xml").status_code == 400
        assert http.get("/api/shows/no-such-show/export").status_code == 404
    assert body["show"]["slug"] == slug
    entries = body["entries"]
    events = [e for e in entries if e["type"] != "sample"]
    samples = [e for e in entries if e["type"] == "sample"]
    # every state change, each with its own seq, 1, 2, 3, ... with nothing missing
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert body["seq"] == len(events)
    assert {e["seq"]: e["type"] for e in events} == seen  # exactly what the console was sent
    assert samples, "the server samples every second while sockets are connected"
    assert all(a["ts"] <= b["ts"] for a, b in itertools.pairwise(entries))
    high = 0  # a sample carries the seq its process had applied: never ahead of the events
    for e in entries:
        if e["type"] == "sample":
            assert e["seq"] <= high
        high = max(high, e["seq"])
    for e in entries:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"])
        assert report.iso_utc(e["ts"]) == e["time"]
    asked = [e for e in events if e["type"] == "question" and e["question"]["text"] == XSS]
    assert asked and asked[0]["question"]["status"] == "pending"
    assert all(set(s) >= {"likes", "votes", "viewers", "round"} for s in samples)

    # the CSV, read with nothing but the csv module and json, gives back the same entries
    text = c.content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0])[:5] == ["seq", "ts", "time", "type", "data"]
    parsed = [
        {"seq": int(r["seq"]), "ts": int(r["ts"]), "time": r["time"], "type": r["type"], **json.loads(r["data"])}
        for r in rows
    ]
    assert parsed == entries
    assert report.from_csv(text) == entries
    # the readable columns agree with the data
    for row, e in zip(rows, entries):
        if e["type"] == "sample":
            assert (int(row["likes_a"]), int(row["viewers"])) == (e["likes"]["a"], e["viewers"])
        if e["type"] == "question":
            assert row["question_id"] == e["question"]["id"]


def test_csv_survives_awkward_text():
    entries = report.export_entries(
        [
            {
                "seq": 1,
                "ts": 1764160000123,
                "type": "question",
                "question": {
                    "id": "q1",
                    "text": '=HYPERLINK("x")\n"引号", 逗号',
                    "name": "a,b",
                    "status": "pending",
                    "upvotes": 0,
                    "created": 1,
                    "device": "d",
                    "flagged": False,
                },
            },
            {
                "seq": 1,
                "ts": 1764160001000,
                "type": "sample",
                "likes": {"a": 3, "b": 4},
                "votes": {"a": 0, "b": 0},
                "viewers": 2,
                "round": 0,
            },
        ]
    )
    text = report.to_csv(entries)
    assert report.from_csv(text) == entries
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["question_text"].startswith("'=")  # a spreadsheet will not run it
    assert entries[0]["time"] == "2025-11-26T12:26:40.123Z"


# -- the pure parts -------------------------------------------------------------------------------------------------


def test_charts_escape_text_and_check_colours():
    svg = charts.line_chart(
        [
            charts.Series('<x>"&', 'red"><script>', [(0, 1), (60_000, 3)]),
            charts.Series("乙", "#1b6fd1", [(0, 2), (60_000, None)]),
        ],
        title="<t>",
        y_label="</svg>",
        x_format=lambda x: "<%d>" % x,
    )
    assert "<x>" not in svg and "&lt;x&gt;&quot;&amp;" in svg
    assert "<script>" not in svg and "<t>" not in svg and "&lt;/svg&gt;" in svg
    assert f'stroke="{charts.FALLBACK}"' in svg  # the bad colour is not used
    assert svg.startswith("<svg ") and svg.endswith("</svg>") and " style=" not in svg
    bars = charts.bar_chart(
        ["<r1>", "r2"],
        [charts.Series("a", "#d7263d", values=[3, 1]), charts.Series("b", "#1b6fd1", values=[1, 1])],
        title="votes",
        badges=["0", None],
        badge_text="<胜>",
    )
    assert bars.count('class="bar"') == 4 and bars.count('class="badge"') == 1
    assert "&lt;r1&gt;" in bars and "&lt;胜&gt;" in bars
    empty = charts.line_chart([], title="t", empty="暂无<数据>")
    assert "暂无&lt;数据&gt;" in empty
    h = charts.hbar_chart([charts.Bar("待审核", 2, "#8a93a6"), charts.Bar("<x>", 0, "#000000")], title="q")
    assert h.count('class="bar"') == 1 and "&lt;x&gt;" in h


def test_chart_scales():
    assert charts.nice_ticks(0) == [0, 1]
    assert charts.nice_ticks(3) == [0, 1, 2, 3]
    assert charts.nice_ticks(97) == [0, 20, 40, 60, 80, 100]
    assert charts.nice_ticks(1234)[-1] >= 1234
    pick = charts.time_ticks(8 * 3600_000)
    ticks = pick(0, 30 * 60_000)
    assert ticks[0] == 0 and all(b - a == 5 * 60_000 for a, b in itertools.pairwise(ticks))
    assert len(pick(0, 10 * 3600_000)) <= 8


def test_headline_numbers():
    assert report.compact(400_123, "zh-CN") == "40万+"
    assert report.compact(20_000, "zh-CN") == "2万"
    assert report.compact(20_001, "zh-CN") == "2万+"
    assert report.compact(15_300, "zh-CN") == "1.5万+"
    assert report.compact(8_532, "zh-CN") == "8,532"
    assert report.compact(400_123, "en") == "400K+"
    assert report.compact(123_456_789, "zh-CN") == "1.2亿+"


def test_likes_per_minute_and_reset_in_the_timeline():
    t0 = 1_764_160_020_000 // 60_000 * 60_000

    def sample(seq: int, at: int, a: int, b: int, viewers: int) -> dict:
        return {
            "seq": seq,
            "ts": t0 + at,
            "type": "sample",
            "likes": {"a": a, "b": b},
            "votes": {},
            "viewers": viewers,
            "round": 0,
        }

    timeline = [
        sample(0, 5_000, 10, 0, 2),
        sample(0, 65_000, 40, 5, 4),
        {"seq": 1, "ts": t0 + 70_000, "type": "show", "show": {"rehearsal": t0 + 70_000, "featured": None}},
        sample(1, 75_000, 2, 1, 3),
        sample(1, 130_000, 12, 1, 3),
        sample(1, 400_000, 13, 1, 1),
    ]
    # the whole timeline: a drop means a reset, counted from zero
    full = report.likes_per_minute([e for e in timeline if e["type"] == "sample"])
    assert full["a"][:3] == [(t0, 10), (t0 + 60_000, 30 + 2), (t0 + 120_000, 10)]
    assert full["a"][3] == (t0 + 180_000, None)  # nobody connected: the line breaks
    state = ShowState("x", title="t", sides=SIDES, rehearsal=t0 + 70_000)
    rep = report.build(state, timeline, now=t0 + 500_000, sample_ms=10_000)
    assert rep.reset_at == t0 + 70_000 and rep.before_reset == 3 and rep.samples == 3
    assert rep.likes_per_minute["a"][:2] == [(t0 + 60_000, 2), (t0 + 120_000, 10)]
    assert [v for _, v in rep.viewers] == [3, None, 3, None, 1]  # gaps over 3 samples break


def test_season_totals_count_aired_episodes():
    def state(slug, status, likes, peak, unique, questions, rounds=(), open_votes=None):
        s = new_show(slug, slug, SIDES, status=status)
        s.counters.likes, s.counters.peak_viewers, s.counters.unique_viewers = likes, peak, unique
        s.rounds = [
            {"index": i + 1, "topic": "t", "duration_s": 60, "votes": v, "winner": None} for i, v in enumerate(rounds)
        ]
        for i, st in enumerate(questions):
            s.questions[f"q{i}"] = Question(f"q{i}", "?", "", st, i, "d")
        if open_votes:
            from server.domain.rounds import Round

            s.round = Round(len(rounds) + 1, "t", "running", 60, 0, 0)
            s.counters.votes = open_votes
        return s

    stats = [
        report.episode_stats(s)
        for s in (
            state("e1", "ended", {"a": 100, "b": 50}, 30, 80, ["approved", "answered", "rejected"], [{"a": 3, "b": 4}]),
            state(
                "e2", "live", {"a": 7, "b": 3}, 40, 20, ["featured", "pending"], [{"a": 1, "b": 0}], {"a": 2, "b": 2}
            ),
            state("e3", "draft", {"a": 999, "b": 0}, 99, 99, ["approved"]),
        )
    ]
    t = report.season_totals(stats)
    assert (t.episodes, t.aired, t.likes) == (3, 2, 160)
    assert (t.peak_max, t.peak_sum, t.unique_sum) == (40, 70, 100)
    assert t.votes == 7 + 1 + 4
    assert (t.received, t.approved, t.answered) == (5, 3, 1)


# -- in a real browser ------------------------------------------------------------------------------


def need_browser() -> None:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        reason = f"{CHROMIUM} is not installed"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    try:
        import playwright  # noqa: F401
    except ImportError:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("REQUIRE_BROWSER=1 but playwright is not installed")
        pytest.skip("playwright is not installed")


class Browser:
    """A Chromium page signed in as the host; collects console errors and page errors."""

    def __init__(self, base: str, shots: Path) -> None:
        self.base, self.shots = base, shots
        self.errors: list[str] = []

    async def __aenter__(self):
        from playwright.async_api import async_playwright

        self._pw = await async_playwright().start()
        self.browser = await self._pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        self.page = await self.browser.new_page(viewport={"width": 1366, "height": 900}, locale="zh-CN")
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        await self.page.goto(f"{self.base}/login?next=/shows")
        await self.page.fill('input[name="token"]', TOKEN)
        await self.page.click('button[type="submit"]')
        await self.page.wait_for_url(f"{self.base}/shows")
        return self

    async def __aexit__(self, *exc):
        await self.browser.close()
        await self._pw.stop()

    async def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000
        return path


@pytest.mark.browser
async def test_report_page_in_chromium(sampling, tmp_path):
    need_browser()
    from playwright.async_api import expect

    slug = create_show(sampling.url, title="浏览器里的报告")
    await drive_show(sampling, slug)
    async with Browser(sampling.url, tmp_path) as b:
        page = b.page
        await page.goto(f"{sampling.url}/shows/{slug}/report")
        await expect(page.locator("h1.report-title")).to_have_text("浏览器里的报告")
        for css in ("likes-chart", "viewers-chart", "votes-chart", "questions-chart"):
            chart = page.locator(f"svg.{css}")
            await expect(chart).to_be_visible()
            box = await chart.bounding_box()
            assert box and box["width"] > 300 and box["height"] > 100, (css, box)
        # the question is shown as text, and nothing ran
        await expect(page.get_by_text(XSS)).to_be_visible()
        assert await page.evaluate("() => document.querySelectorAll('script:not([src])').length") == 0
        # the questions table sorts by a column: numbers largest first, text A to Z
        upvotes = page.locator("#questions thead th").nth(4)
        await upvotes.locator("button").click()
        assert await upvotes.get_attribute("aria-sort") == "descending"
        when = page.locator("#questions thead th").nth(0)
        await when.locator("button").click()
        assert await when.get_attribute("aria-sort") == "ascending"
        assert await upvotes.get_attribute("aria-sort") == "none"
        texts = await page.eval_on_selector_all("#questions tbody td.q-text", "cells => cells.map(c => c.textContent)")
        assert texts[0].startswith(XSS)  # asked first
        await b.shot("report")
        # printable: no navigation, white background
        await page.emulate_media(media="print")
        assert not await page.locator("header.topbar").is_visible()
        assert not await page.locator("[data-print]").is_visible()
        bg = await page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert bg in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)")
        await expect(page.locator("svg.likes-chart")).to_be_visible()
        await b.shot("report-print")
    assert b.errors == []


@pytest.mark.browser
async def test_season_dashboard_and_forms_in_chromium(sampling, tmp_path):
    need_browser()
    from playwright.async_api import expect

    base = sampling.url
    small = create_show(base, title="点赞少的一期", date="2026-01-01")
    big = create_show(base, title="点赞多的一期", date="2026-01-08")
    made = Clients(sampling)
    try:
        phone = await made.audience(big)
        await phone.send({"type": "like", "side": "a", "count": 40})
        await likes_flushed(base, big, {"a": 40, "b": 0})
    finally:
        await made.close()
    async with Browser(base, tmp_path) as b:
        page = b.page
        await page.goto(f"{base}/season")
        await expect(page.locator("#headline")).to_contain_text("期")
        for css in ("season-likes", "season-viewers"):
            await expect(page.locator(f"svg.{css}")).to_be_visible()
        # sort by likes: the bigger episode comes first, then last
        likes_th = page.locator("#season-table thead th").nth(3)
        await likes_th.locator("button").click()
        slugs = await page.eval_on_selector_all("#season-table tbody tr", "rows => rows.map(r => r.dataset.slug)")
        assert slugs.index(big) < slugs.index(small)
        await likes_th.locator("button").click()
        assert await likes_th.get_attribute("aria-sort") == "ascending"
        slugs = await page.eval_on_selector_all("#season-table tbody tr", "rows => rows.map(r => r.dataset.slug)")
        assert slugs.index(big) > slugs.index(small)
        await b.shot("season")

        # the episode list and the edit form: add a plan row, the reset button waits for the slug
        await page.goto(f"{base}/shows")
        await expect(page.locator(f'tr[data-slug="{big}"]')).to_be_visible()
        await b.shot("shows")
        await page.goto(f"{base}/shows/{small}/edit")
        rows = page.locator("#plan tbody tr")
        before = await rows.count()
        await page.click("[data-plan-add]")
        await expect(rows).to_have_count(before + 1)
        await rows.last.locator('input[name="plan_topic"]').fill("浏览器里加的一轮")
        reset_button = page.locator(".reset-form button[type=submit]")
        await expect(reset_button).to_be_disabled()
        await page.fill('.reset-form input[name="confirm"]', small)
        await expect(reset_button).to_be_enabled()
        await b.shot("edit")
        await page.click(".episode-form button[type=submit]")
        await page.wait_for_url(f"{base}/shows/{small}/edit?saved=1")
        assert snapshot(base, small)["plan"][-1]["topic"] == "浏览器里加的一轮"
    assert b.errors == []
