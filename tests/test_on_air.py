"""What goes on air, over real sockets: the host's wording of a question, the end of a
show, the next round's topic from the plan, the show's language (issue 13)."""

import re

import httpx
from conftest import create_show, host_cookies

LONG = "书记您好，" + "我想问一下社区里的老旧小区加装电梯的问题，" * 10 + "谢谢！"


async def _featured(clients, slug: str, text: str = LONG) -> tuple:
    console = await clients.console(slug)
    overlay = await clients.overlay(slug)
    asker = await clients.audience(slug)
    qid = (await asker.request({"type": "ask", "text": text, "name": "李女士"}))["question"]
    assert (await console.request({"type": "question.feature", "question": qid}))["type"] == "ack"
    await overlay.wait_for(lambda f: f["type"] == "show" and f["show"].get("featured") == qid)
    return console, overlay, asker, qid


async def test_the_host_shortens_a_question_on_air_and_the_record_keeps_the_original(server, clients):
    slug = create_show(server.url)
    console, overlay, asker, qid = await _featured(clients, slug)
    short = "  老旧小区加装电梯，\u200b怎么推进？ "
    ack = await console.request({"type": "question.edit", "question": qid, "text": short})
    assert ack["type"] == "ack", ack
    shown = "老旧小区加装电梯，怎么推进？"  # normalised like an asked question
    on_air = await overlay.wait_for(lambda f: f["type"] == "question" and f["question"]["text"] == shown)
    assert on_air["question"]["status"] == "featured" and "original" not in on_air["question"]
    edited = await console.wait_for(lambda f: f["type"] == "question" and f["question"]["text"] == shown)
    assert edited["question"]["original"] == LONG  # the console sees both
    await asker.wait_for(lambda f: f["type"] == "question" and f["question"]["text"] == shown)
    # a new overlay, a new console: the snapshot has it too
    later = await clients.overlay(slug)
    assert [q["text"] for q in later.frames[0]["show"]["questions"] if q["id"] == qid] == [shown]
    again = await clients.console(slug)
    (q,) = [q for q in again.frames[0]["show"]["questions"] if q["id"] == qid]
    assert (q["text"], q["original"]) == (shown, LONG)
    # the record keeps the words as asked beside the wording aired
    export = httpx.get(f"{server.url}/api/shows/{slug}/export?format=json", cookies=host_cookies(server.url)).json()
    records = [e for e in export["entries"] if e.get("type") == "question"]
    assert records and records[-1]["question"]["text"] == LONG and records[-1]["question"]["air"] == shown
    # the host puts the original back with an empty text (or the words as asked)
    assert (await console.request({"type": "question.edit", "question": qid, "text": ""}))["type"] == "ack"
    await overlay.wait_for(lambda f: f["type"] == "question" and f["question"]["text"] == LONG)


async def test_question_edit_rules(server, clients):
    slug = create_show(server.url)
    console, overlay, asker, qid = await _featured(clients, slug, "第一个问题")
    too_long = "长" * 281
    assert (await console.request({"type": "question.edit", "question": qid, "text": too_long}))["code"] == "too_large"
    assert (await console.request({"type": "question.edit", "question": "q999", "text": "x"}))["code"] == "not_found"
    assert (await console.request({"type": "question.edit", "question": qid}))["code"] == "invalid"
    # a pending question may be reworded before it is approved: nobody but consoles hears of it
    other = (await (await clients.audience(slug)).request({"type": "ask", "text": "待审核的问题"}))["question"]
    mark = len(overlay.frames)
    assert (await console.request({"type": "question.edit", "question": other, "text": "改过的"}))["type"] == "ack"
    await console.wait_for(lambda f: f["type"] == "question" and f["question"].get("original") == "待审核的问题")
    assert (await console.request({"type": "question.reject", "question": other}))["type"] == "ack"
    assert (await console.request({"type": "question.edit", "question": other, "text": "y"}))["code"] == "conflict"
    assert not any(f["type"] == "question" and f["question"]["id"] == other for f in overlay.frames[mark:])
    # phones and overlays may not send it
    assert (await asker.request({"type": "question.edit", "question": qid, "text": "x"}))["code"] == "forbidden"


async def test_end_show_ends_the_round_takes_the_question_off_air_and_stops_counting(server, clients):
    slug = create_show(server.url)
    console, overlay, asker, qid = await _featured(clients, slug, "最后一个问题")
    start = {"type": "round.start", "topic": "收官辩题", "duration_s": 300}
    assert (await console.request(start))["type"] == "ack"
    assert (await asker.request({"type": "vote", "side": "b"}))["type"] == "ack"
    mark = len(overlay.frames)
    assert (await console.request({"type": "show.end"}))["type"] == "ack"
    ended = await overlay.wait_for(lambda f: f["type"] == "show" and f["show"].get("status") == "ended", start=mark)
    assert ended["show"]["featured"] is None
    frames = overlay.frames[mark:]
    # the round's result first (counted), the question off air, then the end of the show
    (result,) = [f for f in frames if f["type"] == "round"]
    assert result["round"]["status"] == "finished" and result["rounds"][-1]["votes"] == {"a": 0, "b": 1}
    assert result["rounds_won"] == {"a": 0, "b": 1} and result["seq"] < ended["seq"]
    assert [(f["question"]["id"], f["question"]["status"]) for f in frames if f["type"] == "question"] == [
        (qid, "approved")
    ]
    # nothing counts any more, and the host cannot start another round or end it twice
    assert (await asker.request({"type": "ask", "text": "还能问吗"}))["code"] == "ended"
    assert (await asker.request({"type": "vote", "side": "a"}))["code"] == "ended"
    assert (await console.request(start))["code"] == "conflict"
    assert (await console.request({"type": "show.end"}))["code"] == "conflict"
    snap = (await clients.overlay(slug)).frames[0]["show"]
    assert snap["status"] == "ended" and snap["featured"] is None and snap["round"]["status"] == "finished"
    assert (await asker.request({"type": "show.end"}))["code"] == "forbidden"


async def test_end_show_before_any_round(server, clients):
    slug = create_show(server.url, status="draft")
    console = await clients.console(slug)
    assert (await console.request({"type": "show.end"}))["type"] == "ack"
    f = await console.wait_for(lambda f: f["type"] == "show" and f["show"].get("status") == "ended")
    assert not any(x["type"] == "round" for x in console.frames)
    assert f["show"] == {"status": "ended", "featured": None}


async def test_an_empty_topic_is_the_plans_topic_for_that_round(server, clients):
    plan = [{"topic": "第一轮：社会治理", "duration_s": 240}, {"topic": "第二轮：服务群众", "duration_s": 180}]
    slug = create_show(server.url, plan=plan)
    console = await clients.console(slug)
    assert (await console.request({"type": "round.start", "topic": "", "duration_s": 0}))["type"] == "ack"
    r1 = await console.wait_for(lambda f: f["type"] == "round" and f["round"]["index"] == 1)
    assert (r1["round"]["topic"], r1["round"]["duration_s"]) == ("第一轮：社会治理", 240)
    assert (await console.request({"type": "round.end"}))["type"] == "ack"
    # a console's own topic wins; the duration still comes from the plan when it says 0
    assert (await console.request({"type": "round.start", "topic": "临时换题"}))["type"] == "ack"
    r2 = await console.wait_for(lambda f: f["type"] == "round" and f["round"]["index"] == 2)
    assert (r2["round"]["topic"], r2["round"]["duration_s"]) == ("临时换题", 180)
    assert (await console.request({"type": "round.end"}))["type"] == "ack"
    # past the plan there is no topic to take
    assert (await console.request({"type": "round.start", "topic": " ", "duration_s": 60}))["code"] == "invalid"


def _page_lang(html: str) -> str:
    m = re.search(r'<html lang="([^"]+)"', html)
    assert m, html[:200]
    return m.group(1)


def test_the_shows_language_decides_the_overlays_not_the_browsers(server):
    en = create_show(server.url, lang="en")
    zh = create_show(server.url)
    english_obs, chinese_obs = {"Accept-Language": "en-US,en;q=0.9"}, {"Accept-Language": "zh-CN,zh;q=0.9"}
    assert _page_lang(httpx.get(f"{server.url}/overlay/{zh}", headers=english_obs).text) == "zh-CN"
    assert _page_lang(httpx.get(f"{server.url}/overlay/{en}", headers=chinese_obs).text) == "en"
    assert _page_lang(httpx.get(f"{server.url}/overlay/{en}?lang=zh-CN", headers=chinese_obs).text) == "zh-CN"
    assert _page_lang(httpx.get(f"{server.url}/overlay/{zh}?lang=en").text) == "en"  # ?lang= still overrides
    assert "人在看" in httpx.get(f"{server.url}/overlay/{zh}", headers=english_obs).text
    # a phone follows its own browser when it names Chinese or English, else the show's language
    assert _page_lang(httpx.get(f"{server.url}/s/{zh}", headers=english_obs).text) == "en"
    assert _page_lang(httpx.get(f"{server.url}/s/{en}", headers={"Accept-Language": "fr-FR,fr;q=0.9"}).text) == "en"
    assert _page_lang(httpx.get(f"{server.url}/s/{zh}", headers={"Accept-Language": "fr,en;q=0.5"}).text) == "en"
    assert _page_lang(httpx.get(f"{server.url}/s/{zh}", headers={"Accept-Language": "de"}).text) == "zh-CN"
    assert httpx.get(f"{server.url}/api/shows/{en}").json()["show"]["lang"] == "en"
    bad = httpx.post(
        f"{server.url}/api/shows",
        cookies=host_cookies(server.url),
        json={"slug": "bad-lang", "title": "x", "lang": "fr", "sides": {"a": {}, "b": {}}},
    )
    assert bad.status_code == 400 and bad.json()["fields"] == {"lang": "lang must be zh-CN or en"}


def test_the_producer_sets_the_shows_language(server):
    slug = create_show(server.url)
    with httpx.Client(base_url=server.url, cookies=host_cookies(server.url)) as http:
        form = http.get(f"/shows/{slug}/edit").text
        assert '<select name="lang">' in form and '<option value="zh-CN" selected>' in form
        body = {"title": "英文场", "date": "", "status": "live", "lang": "en", "plan_topic": [], "plan_duration": []}
        for key, side in (("a", {"name": "红方", "guest": "王伟"}), ("b", {"name": "蓝方", "guest": "杨玭"})):
            body.update({f"{key}_{f}": side.get(f, "") for f in ("name", "guest", "org")} | {f"{key}_color": ""})
        r = http.post(f"/shows/{slug}/edit", data=body, headers={"Origin": server.url})
        assert r.status_code == 303, r.text
        assert '<option value="en" selected>' in http.get(f"/shows/{slug}/edit").text
        r = http.post(f"/shows/{slug}/edit", data={**body, "lang": "fr"}, headers={"Origin": server.url})
        assert r.status_code == 400 and "节目语言无效" in r.text
    assert _page_lang(httpx.get(f"{server.url}/overlay/{slug}", headers={"Accept-Language": "zh-CN"}).text) == "en"
