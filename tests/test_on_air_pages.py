"""On air like a real channel (issue 13), in Chromium: safe areas in every layout, one
score story with result moments, emoji drawn whole and in colour, a console that follows
the plan, rewords questions, ends the show and knows when it is offline, screens back
within a second of a restart, and the phone's polish. Every overlay screenshot is also
composited over a busy studio picture with the safe areas drawn (tests/studio.py), in
the shots directory (SHOTS_DIR)."""

import asyncio
import io
import re
import time

import pytest
from browser import CONSOLE as LAPTOP
from browser import NARROW, PHONE, PageErrors, animations_done
from conftest import TOKEN, create_show, overlay_key, wait_until
from PIL import Image
from studio import MEASURE, Box, check_safe, composite, safe_boxes

pytestmark = pytest.mark.browser

LONG_A = "阿卜杜热合曼·买买提"
LONG_B = "Christopher Montgomery"
SIDES = {
    "a": {"name": "红方", "guest": LONG_A, "org": "市公益组织联合会党支部书记", "color": "#d7263d"},
    "b": {"name": "蓝方", "guest": LONG_B, "org": "Riverside Community Partnership", "color": "#1b6fd1"},
}
PLAN = [
    {"topic": "社会治理：怎样让群众少跑腿、好办事，基层党组织如何发挥作用", "duration_s": 300},
    {"topic": "服务群众：两新党建如何走到群众身边", "duration_s": 240},
    {"topic": "基层民主：让党员群众真正参与决策", "duration_s": 180},
]
QUESTION = "书记您好，" + "我想问一下社区里的老旧小区加装电梯的问题，" * 12 + "谢谢！"  # 261 characters
WIDGETS = "widgets=pk,timer,likes,question,viewers,qr"


async def signed_in_context(browser, base: str):
    ctx = await browser.new_context(**LAPTOP)
    page = await ctx.new_page()
    await page.goto(f"{base}/login")
    await page.fill("input[name=token]", TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    await page.close()
    return ctx


async def overlay_page(browser, base: str, slug: str, size: tuple[int, int], query: str = ""):
    ctx = await browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = await ctx.new_page()
    errors = PageErrors(page)
    await page.goto(f"{base}/overlay/{slug}?{WIDGETS}&{query}")
    await wait_until(lambda: page.evaluate("document.querySelector('#pk.live') !== null"), timeout=10)
    return ctx, page, errors


async def still(page) -> None:
    """Laid out and still: the finite animations are over (hearts aside) and fonts are in."""
    await page.evaluate("document.fonts.ready.then(() => true)")
    await animations_done(page, ".safe > .region-top")
    await animations_done(page, "#question")
    await animations_done(page, "#moment")


async def save(page, shots, name: str, layout: str = "landscape") -> Image.Image:
    png = await page.screenshot(omit_background=True)
    (shots / f"{name}.png").write_bytes(png)
    picture = composite(png, layout)
    picture.save(shots / f"{name}-studio.png")
    return Image.open(io.BytesIO(png))


async def busy_show(server, clients, slug: str, phones: int = 3):
    """A show in full swing: a round running with votes, likes, a long question on air."""
    console = await clients.console(slug)
    # the round first: it sets a draft live, and a draft is not public (phones cannot join it)
    assert (await console.request({"type": "round.start", "topic": "", "duration_s": 0}))["type"] == "ack"
    audience = [await clients.audience(slug) for _ in range(phones)]
    for i, phone in enumerate(audience):
        await phone.request({"type": "like", "side": "ab"[i % 2], "count": 30 + i})
        assert (await phone.request({"type": "vote", "side": "ab"[i % 2]}))["type"] == "ack"
    qid = (await audience[0].request({"type": "ask", "text": QUESTION, "name": "市民李女士"}))["question"]
    assert (await console.request({"type": "question.feature", "question": qid}))["type"] == "ack"
    assert (await console.request({"type": "points.set", "side": "a", "points": 3}))["type"] == "ack"
    return console, audience, qid


# Each text's content, and whether it is shown whole: its box is not narrower than its text,
# and neither it nor any ancestor clips (overflow other than visible) or clamps it.
WHOLE = """(selectors) => selectors.flatMap((sel) => [...document.querySelectorAll(sel)]).map((n) => {
  let whole = n.scrollWidth <= n.clientWidth + 1;
  for (let e = n; e && e.id !== "stage"; e = e.parentElement) {
    const s = getComputedStyle(e);
    if (s.webkitLineClamp !== "none" || s.textOverflow === "ellipsis") whole = false;
    if (s.overflowX !== "visible" || s.overflowY !== "visible") whole = false;
  }
  return [n.textContent, whole];
})"""


LAYOUTS = [  # name, browser source size, query, picture layout
    ("1080p-bottom", (1920, 1080), "", "landscape"),
    ("1080p-top", (1920, 1080), "position=top", "landscape"),
    ("720p-bottom", (1280, 720), "", "landscape"),
    ("720p-top-scale75", (1280, 720), "position=top&scale=0.75", "landscape"),
    ("1080p-scale50", (1920, 1080), "scale=0.5", "landscape"),
    ("vertical-bottom", (1080, 1920), "layout=vertical", "vertical"),
    ("vertical-top-scale75", (1080, 1920), "layout=vertical&position=top&scale=0.75", "vertical"),
]


async def _hearts_in_flight(page) -> bool:
    return bool((await page.evaluate(MEASURE))["hearts"])


async def test_every_graphic_and_text_stays_in_the_safe_areas(browser, server, clients, shots_dir):
    slug = create_show(server.url, sides=SIDES, plan=PLAN)
    await busy_show(server, clients, slug)
    boxes = {}
    for name, size, query, layout in LAYOUTS:
        ctx, page, errors = await overlay_page(browser, server.url, slug, size, query)
        await wait_until(lambda page=page: page.evaluate("document.querySelector('#question.on') !== null"), timeout=10)
        await still(page)
        # hearts floating while the studio looks: likes keep coming (new phones: each device's taps
        # are counted up to its own cap)
        for side in "ab":
            await (await clients.audience(slug)).request({"type": "like", "side": side, "count": 30})
        await wait_until(lambda page=page: _hearts_in_flight(page), timeout=10)
        await save(page, shots_dir, f"safe-{name}", layout)
        measured = await page.evaluate(MEASURE)
        problems = check_safe(measured, *size)
        assert not problems, (name, problems)
        ids = {w["id"] for w in measured["widgets"]}
        assert {"pk", "timer", "split", "likes", "viewers", "qr", "question"} <= ids, (name, ids)
        # hearts rise and fade for a few seconds: sample them as they go
        for _ in range(6):
            await asyncio.sleep(0.4)  # (models the eye following them)
            hearts = (await page.evaluate(MEASURE))["hearts"]
            action = safe_boxes(*size)["action"]
            assert all(Box(h["x"], h["y"], h["w"], h["h"]).inside(action) for h in hearts), (name, hearts)
        # the names are whole (shrunk, then wrapped), the question too: nothing clipped, nothing wider
        # than its box, no line clamp
        whole = await page.evaluate(WHOLE, ["#pk .guest", "#question .q-text"])
        assert whole == [[LONG_A, True], [LONG_B, True], [QUESTION, True]], (name, whole)
        boxes[name] = {w["id"]: w for w in measured["widgets"]}
        overflow = await page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        assert overflow == list(size), name  # no scrollbars
        assert not errors.errors, (name, errors.errors)
        await ctx.close()
    # 720p is the 1080p picture, scaled
    for wid, big in boxes["1080p-bottom"].items():
        small = boxes["720p-bottom"][wid]
        for key in ("x", "y", "w", "h"):
            assert abs(small[key] - big[key] * 2 / 3) < 2, (wid, key, small, big)
    # position=top: score bar at the bottom, the lower third at the top
    assert boxes["1080p-top"]["pk"]["y"] > 540 > boxes["1080p-top"]["question"]["y"]
    # a smaller scale moves the graphics into the safe area, toward their own corner
    for wid in ("pk", "question", "likes"):
        full, half = boxes["1080p-bottom"][wid], boxes["1080p-scale50"][wid]
        assert half["w"] == pytest.approx(full["w"] / 2, abs=2), wid
    assert boxes["1080p-scale50"]["question"]["x"] == pytest.approx(192, abs=1)  # still on the title-safe edge
    assert boxes["1080p-scale50"]["likes"]["x"] > boxes["1080p-bottom"]["likes"]["x"]
    # vertical uses the whole height: the score at the top, the lower third at the bottom
    v = boxes["vertical-bottom"]
    assert v["pk"]["y"] < 1920 * 0.15 and v["question"]["y"] + v["question"]["h"] > 1920 * 0.85
    assert v["question"]["w"] > 800  # the width of the safe box


async def test_one_score_story_and_its_moments(browser, server, clients, shots_dir):
    from playwright.async_api import expect

    slug = create_show(server.url, sides=SIDES, plan=PLAN, status="draft")
    # a draft is not public: OBS has the show's keyed address (from the console)
    keyed = f"key={overlay_key(server.url, slug)}"
    ctx, page, errors = await overlay_page(browser, server.url, slug, (1920, 1080), keyed)
    # before the show: names, "starting soon", no counter at zero anywhere
    await expect(page.locator("#pk")).to_have_attribute("data-state", "soon")
    await still(page)
    await save(page, shots_dir, "story-1-before-the-show")
    visible = await page.evaluate(MEASURE)
    assert {w["id"] for w in visible["widgets"]} == {"pk", "qr"}, visible["widgets"]
    assert not [t for t in visible["texts"] if re.fullmatch(r"[0-9,]+", t["text"])], visible["texts"]
    assert "即将开始" in await page.text_content("#pk .bar-soon")

    console, audience, _qid = await busy_show(server, clients, slug)
    await expect(page.locator("#pk")).to_have_attribute("data-state", "live")
    # the bar counts the whole show's likes and says so; the round's votes are apart
    await wait_until(lambda: page.evaluate("document.querySelector('#pk .num[data-side=a]').dataset.value === '62'"))
    assert await page.get_attribute("#pk", "data-metric") == "likes"
    assert (await page.text_content("#pk .metric")).strip() == "全场点赞"
    assert await page.get_attribute("#pk", "data-share") == f"{62 / (62 + 31):.4f}"
    await expect(page.locator("#split")).to_have_attribute("data-state", "live")
    assert (await page.text_content("#split .split-label")).strip() == "第1轮投票"
    assert [await page.text_content(f"#split .split-num[data-side={s}]") for s in "ab"] == ["2", "1"]
    # one more vote does not swing the score bar: it still shows likes
    extra = await clients.audience(slug)
    assert (await extra.request({"type": "vote", "side": "b"}))["type"] == "ack"
    await wait_until(
        lambda: page.evaluate("document.querySelector('#split .split-num[data-side=b]').textContent === '2'")
    )
    assert await page.get_attribute("#pk", "data-share") == f"{62 / (62 + 31):.4f}"
    await still(page)
    await save(page, shots_dir, "story-2-round-running")

    # the round ends (a changed vote makes it 3 : 1): its result has its moment, the question steps aside
    assert (await audience[1].request({"type": "vote", "side": "a"}))["type"] == "ack"
    assert (await console.request({"type": "round.end"}))["type"] == "ack"
    await expect(page.locator("#moment")).to_have_class(re.compile(r"\bon\b"))
    assert await page.get_attribute("#moment", "data-kind") == "round"
    assert await page.get_attribute("#moment", "data-winner") == "a"
    assert (await page.text_content("#moment .mo-title")).strip() == "第1轮结果"
    assert (await page.text_content("#moment .mo-name")).strip() == LONG_A
    assert [t.strip() for t in await page.locator("#moment .mo-num").all_text_contents()] == ["3", "1"]
    await expect(page.locator("#question")).to_have_class(re.compile(r"\bheld\b"))
    await expect(page.locator("#split")).to_be_hidden()
    await still(page)
    await save(page, shots_dir, "story-3-round-result")
    assert not check_safe(await page.evaluate(MEASURE), 1920, 1080)

    # the show ends (from the console): the final result stays, nothing of the round is left
    assert (await console.request({"type": "points.set", "side": "b", "points": 5}))["type"] == "ack"
    assert (await console.request({"type": "show.end"}))["type"] == "ack"
    await wait_until(lambda: page.evaluate("document.querySelector('#moment').dataset.kind === 'final'"), timeout=15)
    assert (await page.text_content("#moment .mo-title")).strip() == "最终结果"
    assert (await page.text_content("#moment .mo-name")).strip() == LONG_A  # 1 round to 0
    rows = await page.locator("#moment .mo-row .mo-label").all_text_contents()
    assert rows == ["胜局", "积分", "点赞"]
    await expect(page.locator("#timer")).to_have_attribute("data-status", "idle")
    await expect(page.locator("#question")).not_to_have_class(re.compile(r"\bon\b"))
    await still(page)
    await save(page, shots_dir, "story-4-final-result")
    assert not check_safe(await page.evaluate(MEASURE), 1920, 1080)
    # a reloaded overlay shows the final result too
    await page.reload()
    await wait_until(lambda: page.evaluate("document.querySelector('#moment.on[data-kind=final]') !== null"))
    assert not errors.errors, errors.errors
    await ctx.close()


COLOUR_EMOJI = "🧑\u200d💻❤\ufe0f😀"  # (a generic sans-serif has a black-and-white 😀)


def colourful(png: bytes) -> float:
    """The share of a picture's pixels that are strongly coloured (not grey, not dark)."""
    data = Image.open(io.BytesIO(png)).convert("HSV").tobytes()
    pixels = [data[i : i + 3] for i in range(0, len(data), 3)]
    return sum(1 for _h, s, v in pixels if s > 90 and v > 90) / max(1, len(pixels))


EMOJI_BOX = """(needle) => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const i = n.textContent.indexOf(needle);
    if (i < 0) continue;
    n.parentElement.scrollIntoView({ block: "center" });
    const range = document.createRange();
    const glyphs = [];
    let at = i;
    for (const seg of new Intl.Segmenter().segment(needle)) {
      range.setStart(n, at); range.setEnd(n, at + seg.segment.length);
      const r = range.getBoundingClientRect();
      glyphs.push({ text: seg.segment, x: r.x, y: r.y, w: r.width, h: r.height,
                    size: Number.parseFloat(getComputedStyle(n.parentElement).fontSize) });
      at += seg.segment.length;
    }
    return glyphs;
  }
  return null;
}"""


async def test_emoji_arrive_whole_and_are_drawn_in_colour(browser, server, clients, shots_dir):
    sides = {
        "a": {"name": "红方", "guest": "程序员小王", "color": "#d7263d"},
        "b": {"name": "蓝方", "guest": "李四", "color": "#1b6fd1"},
    }
    slug = create_show(server.url, sides=sides)
    console = await clients.console(slug)
    phone = await clients.audience(slug)
    text = f"写代码的书记{COLOUR_EMOJI}加油"
    qid = (await phone.request({"type": "ask", "text": text, "name": "小李😀"}))["question"]
    got = await console.wait_for(lambda f: f["type"] == "question" and f["question"]["id"] == qid)
    assert got["question"]["text"] == text  # the joiner and the presentation selector survive
    assert (await console.request({"type": "question.feature", "question": qid}))["type"] == "ack"
    host = await signed_in_context(browser, server.url)
    pages = {}
    octx, pages["overlay"], _ = await overlay_page(browser, server.url, slug, (1920, 1080))
    pages["console"] = await host.new_page()
    await pages["console"].goto(f"{server.url}/console/{slug}")
    pctx = await browser.new_context(**PHONE)
    pages["phone"] = await pctx.new_page()
    await pages["phone"].goto(f"{server.url}/s/{slug}")
    for name, page in pages.items():
        glyphs = await wait_until(lambda page=page: page.evaluate(EMOJI_BOX, COLOUR_EMOJI), timeout=15)
        await page.evaluate("document.fonts.ready.then(() => true)")
        await asyncio.sleep(0.6)  # (the lower third's slide-in; the glyph boxes below are re-read after it)
        glyphs = await page.evaluate(EMOJI_BOX, COLOUR_EMOJI)
        assert [g["text"] for g in glyphs] == ["🧑\u200d💻", "❤\ufe0f", "😀"], (name, glyphs)
        for g in glyphs:
            # one glyph (a technologist, not a person and a laptop side by side), drawn in colour
            assert g["w"] < g["size"] * 1.6, (name, g)
            clip = {"x": g["x"], "y": g["y"], "width": max(1, g["w"]), "height": max(1, g["h"])}
            png = await page.screenshot(clip=clip)
            (shots_dir / f"emoji-{name}-{ord(g['text'][0]):x}.png").write_bytes(png)
            assert colourful(png) > 0.08, (name, g["text"], colourful(png))
    await pages["overlay"].screenshot(path=str(shots_dir / "emoji-overlay.png"), omit_background=True)
    composite(await pages["overlay"].screenshot(omit_background=True)).save(shots_dir / "emoji-overlay-studio.png")
    await pages["phone"].screenshot(path=str(shots_dir / "emoji-phone.png"), full_page=True)
    for ctx in (octx, host, pctx):
        await ctx.close()


async def test_the_next_topic_follows_the_plan_on_every_console(browser, server, shots_dir):
    slug = create_show(server.url, sides=SIDES, plan=PLAN)
    host = await signed_in_context(browser, server.url)
    first, second = await host.new_page(), await host.new_page()
    errors = [PageErrors(first), PageErrors(second)]
    for page in (first, second):
        await page.goto(f"{server.url}/console/{slug}")
        await wait_until(lambda page=page: _value_is(page, "#round-topic", PLAN[0]["topic"]), timeout=10)
    # round 1 from the first console; the second's "next round" moves on to the plan's round 2
    await first.click("#round [data-action='round.start']")
    await wait_until(lambda: _text_is(second, "#round .round-topic", PLAN[0]["topic"]), timeout=10)
    for page in (first, second):
        await wait_until(lambda page=page: _value_is(page, "#round-topic", PLAN[1]["topic"]), timeout=10)
        assert await page.input_value("#round-duration") == str(PLAN[1]["duration_s"])
    await first.click("#round [data-action='round.end']")
    # round 2 from the second console: the plan's round 2, not round 1's topic again
    await wait_until(lambda: second.evaluate("!document.querySelector(\"[data-action='round.start']\").disabled"))
    await second.click("#round [data-action='round.start']")
    for page in (first, second):
        await wait_until(lambda page=page: _text_is(page, "#round .round-topic", PLAN[1]["topic"]), timeout=10)
        await wait_until(lambda page=page: _value_is(page, "#round-topic", PLAN[2]["topic"]), timeout=10)
    # a topic the host typed stays put while the rounds move on
    await first.fill("#round-topic", "主持人临时换的辩题")
    await second.click("#round [data-action='round.end']")
    await wait_until(lambda: _text_is(first, "#round .round-status", "结束"), timeout=10)
    assert await first.input_value("#round-topic") == "主持人临时换的辩题"
    await first.click("#round [data-action='round.start']")
    await wait_until(lambda: _text_is(second, "#round .round-topic", "主持人临时换的辩题"), timeout=10)
    # past the plan: no stale topic is left to start a round with
    await wait_until(lambda: _value_is(second, "#round-topic", ""), timeout=10)
    await second.screenshot(path=str(shots_dir / "console-plan-follows.png"), full_page=True)
    assert not errors[0].errors and not errors[1].errors
    await host.close()


async def _value_is(page, selector: str, value: str) -> bool:
    return await page.input_value(selector) == value


async def _text_is(page, selector: str, text: str) -> bool:
    return ((await page.text_content(selector)) or "").strip() == text


async def test_the_host_rewords_on_air_ends_the_show_and_the_phone_says_thanks(browser, server, clients, shots_dir):
    from playwright.async_api import expect

    slug = create_show(server.url, sides=SIDES, plan=PLAN)
    _console, _audience, qid = await busy_show(server, clients, slug)
    host = await signed_in_context(browser, server.url)
    console = await host.new_page()
    console_errors = PageErrors(console)
    await console.goto(f"{server.url}/console/{slug}")
    octx, overlay, overlay_errors = await overlay_page(browser, server.url, slug, (1920, 1080))
    pctx = await browser.new_context(**PHONE)
    phone = await pctx.new_page()
    phone_errors = PageErrors(phone)
    await phone.goto(f"{server.url}/s/{slug}")
    await wait_until(lambda: _text_is(overlay, "#question .q-text", QUESTION), timeout=10)

    # the host shortens the question on air, in place in the queue
    item = console.locator(f"#queue li[data-id={qid}]")
    await item.locator("[data-action=edit]").click()
    editor = item.locator(".qi-edit-text")
    assert await editor.input_value() == QUESTION
    short = "老旧小区加装电梯，社区党组织怎么推进？"
    await editor.fill(short)
    await item.locator("[data-action='edit.save']").click()
    await wait_until(lambda: _text_is(overlay, "#question .q-text", short), timeout=10)
    await wait_until(lambda: _text_is(phone, f"#questions li[data-id={qid}] .q-text", short), timeout=10)
    await expect(item.locator(".qi-text")).to_have_text(short)
    await expect(item.locator(".qi-original")).to_contain_text(QUESTION)  # the original, for the host
    await expect(item).to_have_class(re.compile(r"\bedited\b"))
    await console.screenshot(path=str(shots_dir / "console-reworded.png"), full_page=True)
    await still(overlay)
    await save(overlay, shots_dir, "overlay-reworded")

    # "end show" takes two clicks; then the round ends, the question comes off, counting stops
    end = console.locator("#round [data-action='show.end']")
    await end.click()
    await expect(end).to_have_text("确认结束节目？")
    await console.screenshot(path=str(shots_dir / "console-end-armed.png"), full_page=True)
    await end.click()
    await expect(console.locator(".show-status")).to_have_attribute("data-status", "ended")
    await expect(end).to_be_disabled()
    await expect(console.locator("#round [data-action='round.start']")).to_be_disabled()
    await wait_until(lambda: overlay.evaluate("document.querySelector('#moment').dataset.kind === 'final'"), timeout=20)
    await expect(overlay.locator("#question")).not_to_have_class(re.compile(r"\bon\b"))

    # the phone: thanks, the final result in its own element, no more taps, votes or questions
    await expect(phone.locator("#ended")).to_be_visible()
    assert (await phone.text_content("#ended .ended-title")).strip() == "谢谢观看"
    await expect(phone.locator("#final .final-name")).to_have_text(LONG_A)
    assert await phone.get_attribute("#final", "data-winner") == "a"
    assert [t.strip() for t in await phone.locator("#final .final-row dt").all_text_contents()] == [
        "胜局",
        "积分",
        "点赞",
    ]
    assert await phone.locator("#ended-next").count() == 1  # where the season's "what is next" goes
    await expect(phone.locator(".ask-card")).to_be_hidden()
    await expect(phone.locator("#vote")).to_be_hidden()
    before = await phone.get_attribute("button.heart[data-side=a] .likes", "data-value")
    await expect(phone.locator("button.heart[data-side=a]")).to_be_disabled()
    await phone.locator("button.heart[data-side=a]").click(force=True)
    assert await phone.get_attribute("button.heart[data-side=a] .likes", "data-value") == before
    await phone.screenshot(path=str(shots_dir / "phone-ended.png"), full_page=True)
    await console.screenshot(path=str(shots_dir / "console-ended.png"), full_page=True)
    await still(overlay)
    await save(overlay, shots_dir, "overlay-ended")
    for errors in (console_errors, overlay_errors, phone_errors):
        assert not errors.errors, errors.errors
    for ctx in (host, octx, pctx):
        await ctx.close()


def watch_snapshots(page, log: list, name: str) -> None:
    """Note (monotonic time, name) for every first frame (a snapshot, or `resumed` when the
    page came back with its last seq) the page's sockets receive."""

    def on_socket(ws):
        def on_frame(payload):
            if isinstance(payload, str) and payload.startswith(('{"type":"snapshot"', '{"type":"resumed"')):
                log.append((time.monotonic(), name))

        ws.on("framereceived", on_frame)

    page.on("websocket", on_socket)


async def test_offline_console_disables_everything_and_screens_are_back_within_a_second(
    browser, fresh_server, shots_dir
):
    from conftest import overlay_key
    from playwright.async_api import expect

    srv = fresh_server()
    slug = create_show(srv.url, sides=SIDES, plan=PLAN)
    key = overlay_key(srv.url, slug)
    snapshots: list[tuple[float, str]] = []
    host = await signed_in_context(browser, srv.url)
    console = await host.new_page()
    watch_snapshots(console, snapshots, "console")
    await console.goto(f"{srv.url}/console/{slug}")
    octx = await browser.new_context(viewport={"width": 1920, "height": 1080})
    overlay = await octx.new_page()
    watch_snapshots(overlay, snapshots, "overlay")
    await overlay.goto(f"{srv.url}/overlay/{slug}?key={key}")
    pctx = await browser.new_context(**PHONE)
    phone = await pctx.new_page()
    watch_snapshots(phone, snapshots, "phone")
    await phone.goto(f"{srv.url}/s/{slug}")
    await wait_until(lambda: "phone" in {n for _, n in snapshots}, timeout=15)  # live before the restart
    screens = console.locator("#overlay-status")
    await expect(screens).to_have_attribute("data-state", "open", timeout=10_000)
    await expect(console.locator("body")).not_to_have_class(re.compile(r"\boffline\b"))
    assert await console.evaluate("document.querySelectorAll('.grid button:disabled').length") < 10
    # the screens' own schedule, whatever the close: never more than a second between tries
    # (phones' jittered waits, even capped after a restart, may reach 2 s)
    longest = await console.evaluate("""async () => {
        const { backoffDelay } = await import("/static/common/ws.js");
        const waits = [];
        for (const role of ["overlay", "console"])
            for (let attempt = 0; attempt < 12; attempt++)
                for (const since of [null, 0, 5000])
                    for (let i = 0; i < 20; i++) waits.push(backoffDelay(attempt, role, since));
        return Math.max(...waits);
    }""")
    assert longest <= 1000, longest

    srv.env["PORT"] = str(srv.port)
    srv.stop()  # SIGTERM: every socket closed with 1012 (restarting)
    await expect(console.locator("body")).to_have_class(re.compile(r"\boffline\b"), timeout=10_000)
    # every action is disabled (the queue's filters only choose what to look at), the live figures
    # are marked stale, "screens on air" is not green
    enabled = await console.evaluate("""() => [...document.querySelectorAll(
        '.grid button:not(#filters button, #side-filters button), .grid input, .grid textarea, .bar [data-action]')]
        .filter((b) => !b.matches(':disabled')).map((b) => b.dataset.action || b.id || b.className)""")
    assert enabled == [], enabled
    await expect(console.locator("#stats .stale-note")).to_be_visible()
    await expect(console.locator("#round .stale-note")).to_be_visible()
    await expect(screens).to_have_attribute("data-state", "unknown")
    assert (await screens.locator(".n").text_content()).strip() == "–"
    assert "恢复" in await console.text_content("#conn-status")
    # the phone hears that the show is restarting, not that its network is bad
    await expect(phone.locator("#conn")).to_be_visible()
    assert (await phone.text_content("#conn .conn-text")).strip() == "直播服务正在恢复，马上回来…"
    await asyncio.sleep(8)  # (models an outage of some seconds: the pages keep trying, their backoff grows)
    await console.screenshot(path=str(shots_dir / "console-disconnected.png"), full_page=True)
    await phone.screenshot(path=str(shots_dir / "phone-restarting.png"))

    before = len(snapshots)
    srv.start()
    back = time.monotonic()  # the server answers again
    await wait_until(lambda: {n for _, n in snapshots[before:]} >= {"overlay", "console"}, timeout=10)
    times = {name: min(t for t, n in snapshots[before:] if n == name) - back for name in ("overlay", "console")}
    (shots_dir / "reconnect-times.txt").write_text(f"{times}\n")
    assert times["overlay"] < 1.3 and times["console"] < 1.3, times  # about a second, with room for a busy CI
    await expect(console.locator("body")).not_to_have_class(re.compile(r"\boffline\b"))
    await expect(console.locator("#stats .stale-note")).to_be_hidden()
    await expect(screens).to_have_attribute("data-state", "open", timeout=10_000)
    await expect(phone.locator("#conn")).to_be_hidden(timeout=20_000)
    for ctx in (host, octx, pctx):
        await ctx.close()


async def test_phone_polish_at_360(browser, server, clients, shots_dir):
    from playwright.async_api import expect

    slug = create_show(server.url, sides=SIDES, plan=PLAN)
    console = await clients.console(slug)
    other = await clients.audience(slug)
    qid = (await other.request({"type": "ask", "text": "两新组织的党建怎样服务群众？"}))["question"]
    assert (await console.request({"type": "question.approve", "question": qid}))["type"] == "ack"
    ctx = await browser.new_context(**NARROW)
    phone = await ctx.new_page()
    errors = PageErrors(phone)
    await phone.goto(f"{server.url}/s/{slug}")
    await expect(phone.locator(f"#questions li[data-id={qid}] button.upvote")).to_be_visible(timeout=15_000)
    await phone.evaluate("document.fonts.ready.then(() => true)")
    # long names stay clear of the VS badge, whole (shrunk, then wrapped)
    clash = await phone.evaluate("""() => {
      const vs = document.querySelector('.vs').getBoundingClientRect();
      const out = [];
      for (const el of document.querySelectorAll('.heart .guest, .heart .org, .heart .side-name')) {
        const range = document.createRange(); range.selectNodeContents(el);
        for (const r of range.getClientRects()) {
          const x = r.left < vs.right && vs.left < r.right, y = r.top < vs.bottom && vs.top < r.bottom;
          if (x && y) out.push(el.textContent);
        }
      }
      return out;
    }""")
    assert clash == [], clash
    names = await phone.evaluate("""() => [...document.querySelectorAll('.heart .guest')].map((n) =>
        [n.textContent, n.scrollWidth <= n.clientWidth + 1, Number.parseFloat(getComputedStyle(n).fontSize)])""")
    assert [n[:2] for n in names] == [[LONG_A, True], [LONG_B, True]] and min(n[2] for n in names) >= 17, names
    # upvote targets a finger can hit
    box = await phone.locator(f"#questions li[data-id={qid}] button.upvote").bounding_box()
    assert box["height"] >= 44 and box["width"] >= 44, box
    # this phone's own taps, and a combo while they keep coming
    heart = phone.locator("button.heart[data-side=a]")
    for _ in range(12):
        await heart.click()
    await expect(phone.locator("#my-taps .my-total")).to_have_text("你已点赞 12")
    await expect(phone.locator("#my-taps .combo")).to_have_text(re.compile(r"连击 ×(1[0-2]|[3-9])"))
    await phone.screenshot(path=str(shots_dir / "phone-360-taps.png"), full_page=True)
    # toasts take the phone's full width
    await phone.click("#ask button[type=submit]")  # nothing typed: a toast says so
    toast = phone.locator("#toast.on")
    await expect(toast).to_be_visible()
    await animations_done(phone, "#toast")
    tb = await toast.bounding_box()
    assert tb["width"] >= 360 - 2 * 12 - 1 and tb["x"] <= 12.5, tb
    await phone.screenshot(path=str(shots_dir / "phone-360-toast.png"))
    # the count of taps survives a reload; the combo does not
    await phone.reload()
    await expect(phone.locator("#my-taps .my-total")).to_have_text("你已点赞 12")
    await expect(phone.locator("#my-taps .combo")).to_be_hidden()
    assert not errors.errors, errors.errors
    await ctx.close()


async def test_the_overlay_speaks_the_shows_language_not_the_studio_browsers(browser, server):
    english = create_show(server.url, lang="en")
    chinese = create_show(server.url)
    for slug, locale, lang, soon, label in (
        (english, "zh-CN", "en", "Starting soon", "Likes, whole show"),
        (chinese, "en-US", "zh-CN", "节目即将开始", "全场点赞"),
    ):
        ctx = await browser.new_context(viewport={"width": 1280, "height": 720}, locale=locale)
        page = await ctx.new_page()
        await page.goto(f"{server.url}/overlay/{slug}")
        await wait_until(lambda page=page: page.evaluate("document.querySelector('#pk.live') !== null"), timeout=10)
        assert await page.evaluate("document.documentElement.lang") == lang
        assert (await page.text_content("#pk .bar-soon")).strip() == soon
        assert (await page.text_content("#pk .metric-text")).strip() == label
        await page.goto(f"{server.url}/overlay/{slug}?lang={'zh-CN' if lang == 'en' else 'en'}")  # still overrides
        assert await page.evaluate("document.documentElement.lang") != lang
        await ctx.close()
