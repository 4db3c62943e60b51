"""The three pages in real Chromium against a real server."""

import io
import re

import orjson
import pytest
from browser import PHONE, STUDIO, PageErrors, SentFrames, animations_done
from conftest import TOKEN, create_show, wait_until
from PIL import Image

pytestmark = pytest.mark.browser

LAPTOP = {"viewport": {"width": 1366, "height": 900}, "locale": "zh-CN"}


async def sign_in(context, base: str) -> None:
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.fill("input[name=token]", TOKEN)
    await page.click("button[type=submit], input[type=submit]")
    await page.wait_for_load_state()
    await page.close()


async def open_pages(browser, base: str, slug: str):
    phone_ctx = await browser.new_context(**PHONE)
    studio_ctx = await browser.new_context(**STUDIO)
    host_ctx = await browser.new_context(**LAPTOP)
    await sign_in(host_ctx, base)
    phone, overlay, console = (await phone_ctx.new_page(), await studio_ctx.new_page(), await host_ctx.new_page())
    errors = {name: PageErrors(p) for name, p in (("phone", phone), ("overlay", overlay), ("console", console))}
    sent = SentFrames(phone)
    await overlay.goto(f"{base}/overlay/{slug}")
    await phone.goto(f"{base}/s/{slug}")
    await console.goto(f"{base}/console/{slug}")
    return phone, overlay, console, errors, sent


async def overlay_total(overlay) -> int:
    value = await overlay.get_attribute("#likes", "data-total")
    return int(value or 0)


async def test_twenty_taps_on_a_phone_raise_the_overlay_by_exactly_twenty(browser, server, clients, shots_dir):
    slug = create_show(server.url)
    phone, overlay, _console, errors, sent = await open_pages(browser, server.url, slug)
    await wait_until(lambda: overlay.locator("#likes").get_attribute("data-total"), timeout=10)
    start = await overlay_total(overlay)
    heart = phone.locator("button.heart[data-side=a]")
    for _ in range(20):
        await heart.click()
    total = await wait_until(lambda: _at_least(overlay, start + 20), timeout=10)
    assert total == start + 20
    # nothing more arrives: the phone sent twenty taps, no more (its frames, as they left) ...
    await wait_until(lambda: sum(sent.likes().values()) >= 20, timeout=10)
    # ... and the server counted them once: a marker like from another phone, acknowledged,
    # is flushed by a later tick than theirs, so the overlay's first total with the marker
    # in it also holds anything counted twice
    marker = await clients.audience(slug)
    assert (await marker.request({"type": "like", "side": "b", "count": 1}))["type"] == "ack"
    after = await wait_until(lambda: _at_least(overlay, start + 21), timeout=10)
    assert after == start + 21
    assert sent.likes() == {"a": 20, "b": 0}
    await phone.screenshot(path=str(shots_dir / "audience-after-taps.png"), full_page=True)
    for name, e in errors.items():
        assert not e.errors, (name, e.errors)


async def _at_least(overlay, n):
    total = await overlay_total(overlay)
    return total if total >= n else None


async def test_question_from_phone_to_air(browser, server, shots_dir):
    from playwright.async_api import expect

    slug = create_show(server.url)
    phone, overlay, console, errors, _sent = await open_pages(browser, server.url, slug)
    text = "书记，两新组织的党建怎样服务群众？"
    await phone.fill("#ask textarea[name=text]", text)
    await phone.fill("#ask input[name=name]", "市民李女士")
    await phone.click("#ask button[type=submit]")
    # the asker sees their own question, waiting for moderation; nobody else does yet
    await phone.locator("#questions li.mine", has_text=text).wait_for(timeout=10_000)
    item = console.locator("#queue li", has_text=text)
    await item.wait_for(timeout=10_000)
    await item.locator("button[data-action=approve]").click()
    await item.locator("button[data-action=feature]").wait_for(timeout=10_000)
    await item.locator("button[data-action=feature]").click()
    q = overlay.locator("#question .q-text")
    await q.wait_for(timeout=10_000)
    await wait_until(lambda: _text_is(q, text), timeout=10)
    assert (await overlay.locator("#question .q-name").text_content()).strip() == "市民李女士"
    # the lower third is on air and has finished animating in
    await expect(overlay.locator("#question")).to_have_class(re.compile(r"\bon\b"), timeout=10_000)
    await animations_done(overlay, "#question")
    await overlay.screenshot(path=str(shots_dir / "overlay-featured.png"), omit_background=True)
    await console.screenshot(path=str(shots_dir / "console-featured.png"), full_page=True)
    await phone.screenshot(path=str(shots_dir / "audience-question.png"), full_page=True)
    for name, e in errors.items():
        assert not e.errors, (name, e.errors)


async def _text_is(locator, text):
    return (await locator.text_content() or "").strip() == text


async def test_overlay_is_transparent_where_no_widget_is(browser, server, shots_dir):
    from playwright.async_api import expect

    slug = create_show(server.url)
    ctx = await browser.new_context(**STUDIO)
    page = await ctx.new_page()
    errors = PageErrors(page)
    response = await page.goto(f"{server.url}/overlay/{slug}")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    await page.locator("#likes").wait_for()
    # the snapshot is rendered (every widget at once) and the widgets have faded in (before the
    # show only the score bar's names: no zero counters)
    await expect(page.locator("#pk")).to_have_class(re.compile(r"\blive\b"), timeout=10_000)
    await animations_done(page)
    png = await page.screenshot(omit_background=True)
    (shots_dir / "overlay-idle.png").write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGBA")
    assert image.size == (1920, 1080)
    # the middle of the picture (where the guests are) is see-through
    for x, y in ((960, 540), (700, 450), (1200, 600), (960, 700)):
        assert image.getpixel((x, y))[3] == 0, (x, y, image.getpixel((x, y)))
    alpha = image.getchannel("A")
    opaque = alpha.point(lambda a: 255 if a else 0).histogram()[255]
    assert 0.01 < opaque / (1920 * 1080) < 0.4  # some graphics, mostly transparent
    overflow = await page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert overflow == [1920, 1080]  # no scrollbars
    assert not errors.errors, errors.errors


XSS = [
    '<img src=x onerror="window.__pwned=1">',
    "<script>window.__pwned=2</script>",
    '<a href="javascript:window.__pwned=3">点我</a>',
]


async def test_hostile_question_text_is_inert_on_console_and_overlay(browser, server, clients, shots_dir):
    slug = create_show(server.url)
    phone, overlay, console, _errors, _sent = await open_pages(browser, server.url, slug)
    dialogs = []
    for page in (phone, overlay, console):
        page.on("dialog", lambda d: dialogs.append(d.message))
    ws_console = await clients.console(slug)
    asked = []
    for text in XSS:
        p = await clients.audience(slug)
        asked.append((await p.request({"type": "ask", "text": text}))["question"])
    for qid in asked:
        assert (await ws_console.request({"type": "question.approve", "question": qid}))["type"] == "ack"
    await wait_until(lambda: _approved_on(console, len(asked)), timeout=10)
    for more in await console.locator("#queue .qi-more:visible").all():  # alike ones are one card: open them
        await more.click()
    leaders = {q["cluster"] for q in (await clients.console(slug)).frames[0]["show"]["questions"]}
    for qid, text in zip(asked, XSS):
        await console.locator("#queue :is(li, .qm)", has_text=text).first.wait_for(timeout=10_000)
        if qid in leaders:  # a phone shows a cluster as one card, in its leader's words
            await phone.locator(f"#questions li[data-id='{qid}']", has_text=text).wait_for(timeout=10_000)
    for qid, text in zip(asked, XSS):
        assert (await ws_console.request({"type": "question.feature", "question": qid}))["type"] == "ack"
        await wait_until(lambda text=text: _text_is(overlay.locator("#question .q-text"), text), timeout=10)
    await overlay.screenshot(path=str(shots_dir / "overlay-xss.png"), omit_background=True)
    await console.screenshot(path=str(shots_dir / "console-xss.png"), full_page=True)
    for page in (phone, overlay, console):
        assert await page.evaluate("window.__pwned === undefined")
        assert await page.locator("img[src=x], a[href^='javascript:']").count() == 0
    assert dialogs == []


async def _approved_on(console, n: int) -> bool:
    members = await console.eval_on_selector_all(
        "#queue li.qi", "(cards) => cards.map((c) => Number(c.dataset.members))"
    )
    return sum(members) == n


async def test_pages_reconnect_after_a_restart(browser, fresh_server, shots_dir):
    srv = fresh_server()
    slug = create_show(srv.url)
    ctx = await browser.new_context(**STUDIO)
    page = await ctx.new_page()
    errors = PageErrors(page)
    sockets, firsts = [], []

    def on_socket(ws) -> None:
        sockets.append(ws)
        ws.on("framereceived", lambda payload: firsts.append((ws.url, orjson.loads(payload)["type"])))

    page.on("websocket", on_socket)
    await page.goto(f"{srv.url}/overlay/{slug}?debug=1")
    await wait_until(lambda: len(firsts) >= 1, timeout=10)
    srv.env["PORT"] = str(srv.port)
    srv.stop()
    srv.start()
    await wait_until(lambda: len(sockets) >= 2, timeout=20)
    # the page comes back with its last seq and the stream's epoch, and resumes (nothing
    # changed while the server was away: no snapshot)
    assert "since=" in sockets[-1].url and "epoch=" in sockets[-1].url
    await wait_until(lambda: any(url == sockets[-1].url for url, _ in firsts), timeout=10)
    assert next(kind for url, kind in firsts if url == sockets[-1].url) == "resumed"
    phone_ctx = await browser.new_context(**PHONE)
    phone = await phone_ctx.new_page()
    await phone.goto(f"{srv.url}/s/{slug}")
    for _ in range(3):
        await phone.locator("button.heart[data-side=b]").click()
    await wait_until(lambda: _at_least(page, 3), timeout=10)
    # the only page errors allowed are the browser's own reports of the refused reconnects
    assert all("WebSocket" in e or "ERR_CONNECTION_REFUSED" in e for e in errors.errors), errors.errors


async def test_console_sees_overlays_and_reloads_them(browser, server, shots_dir):
    slug = create_show(server.url)
    host = await browser.new_context(**LAPTOP)
    await sign_in(host, server.url)
    console = await host.new_page()
    errors = PageErrors(console)
    await console.goto(f"{server.url}/console/{slug}")
    status = console.locator("#overlay-status")
    await wait_until(lambda: _attr_is(status, "data-state", "stopped"), timeout=10)
    studio = await browser.new_context(**STUDIO)
    overlay = await studio.new_page()
    loads = []
    overlay.on("load", lambda: loads.append(1))
    # the studio copies the keyed address from the console: only keyed overlays count as screens
    await wait_until(lambda: console.locator("#overlay-url").input_value(), timeout=10)
    keyed = await console.locator("#overlay-url").input_value()
    assert keyed.startswith(f"{server.url}/overlay/{slug}?key=")
    preview = await studio.new_page()  # an unkeyed preview is no screen
    await preview.goto(f"{server.url}/overlay/{slug}?debug=1")
    await overlay.goto(keyed + "&widgets=pk,timer,likes,question,viewers,qr")
    await wait_until(lambda: _attr_is(status, "data-state", "open"), timeout=10)
    assert (await status.locator(".n").text_content()).strip() == "1"
    assert await console.locator("#entry img.entry-qr").evaluate("img => img.naturalWidth > 0")
    await console.screenshot(path=str(shots_dir / "console-overlays.png"), full_page=True)
    await console.click("[data-action='overlay.reload']")
    await wait_until(lambda: len(loads) >= 2, timeout=10)  # the overlay reloaded itself
    assert await overlay.locator("#qr img").evaluate("img => img.naturalWidth > 0")
    assert not errors.errors, errors.errors


async def _attr_is(locator, name, value):
    return await locator.get_attribute(name) == value


async def test_overlay_theme_position_and_scale(browser, server, shots_dir):
    from playwright.async_api import expect

    slug = create_show(
        server.url,
        sides={
            "a": {"name": "甲方", "guest": "张三", "color": "#2a9d8f"},
            "b": {"name": "乙方", "guest": "李四", "color": "#8e44ad"},
        },
    )
    ctx = await browser.new_context(**STUDIO)
    page = await ctx.new_page()
    errors = PageErrors(page)
    await page.goto(f"{server.url}/overlay/{slug}")
    await page.locator("#pk.live, #pk").first.wait_for()
    await wait_until(lambda: _stage_var(page, "--a", "#2a9d8f"), timeout=10)
    assert await _stage_var(page, "--b", "#8e44ad")  # the bar is themed from the show's colours
    default_box = await page.locator("#pk").bounding_box()
    assert default_box["y"] < 540  # score bar at the top by default
    await page.goto(f"{server.url}/overlay/{slug}?position=top&scale=0.75")
    await wait_until(lambda: _stage_var(page, "--a", "#2a9d8f"), timeout=10)
    await expect(page.locator("#pk")).to_have_class(re.compile(r"\blive\b"), timeout=10_000)
    await animations_done(page)  # laid out and still
    box = await page.locator("#pk").bounding_box()
    assert box["y"] > 540  # position=top: the bar moves to the bottom, the question to the top
    assert box["width"] < default_box["width"] * 0.8  # scale=0.75
    await page.screenshot(path=str(shots_dir / "overlay-top-scaled.png"), omit_background=True)
    assert not errors.errors, errors.errors


async def _stage_var(page, name, value):
    got = await page.evaluate(
        "name => { const el = document.querySelector('[style*=\"--a\"]') || document.body;"
        " return getComputedStyle(el).getPropertyValue(name).trim(); }",
        name,
    )
    return got.lower() == value


async def test_expired_session_asks_to_sign_in_again(browser, fresh_server):
    srv = fresh_server(SESSION_MAX_AGE_S="3")
    slug = create_show(srv.url)
    host = await browser.new_context(**LAPTOP)
    await sign_in(host, srv.url)
    console = await host.new_page()
    await console.goto(f"{srv.url}/console/{slug}")
    banner = console.locator("#expired")
    await banner.wait_for(state="visible", timeout=10_000)
    assert "登录" in (await banner.text_content())
    assert await banner.locator("a").get_attribute("href") == f"/login?next=/console/{slug}"
