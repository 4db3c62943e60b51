"""Verdicts through the real pages (issue 15), in Chromium: a show with a pre-debate stance,
three rounds (the last sealed) and a post-debate stance, played by a dozen phones (ten
sockets, two Chromium phone pages that tap the stance buttons). The overlay, the phones, the
console and the report show the right swing, conversion matrix, sealed-then-revealed
result and speaking times, and the sealed split reaches no phone or overlay before the
reveal. Screenshots (phone 390×844 and 360×780, overlay over a busy studio picture with the
safe areas drawn, console 1280×800) go to SHOTS_DIR."""

import json
import re

import httpx
import pytest
from browser import PageErrors, animations_done
from conftest import create_show, host_cookies, wait_until
from studio import MEASURE, check_safe, composite
from test_on_air_pages import NARROW, PHONE, signed_in_context

from server.domain import verdict as v

pytestmark = pytest.mark.browser

SIDES = {
    "a": {"name": "红方", "guest": "阿卜杜热合曼·买买提", "org": "市公益组织联合会", "color": "#d7263d"},
    "b": {"name": "蓝方", "guest": "Christopher Montgomery", "org": "Riverside Partnership", "color": "#1b6fd1"},
}
PLAN = [
    {"topic": "社会治理：怎样让群众少跑腿", "duration_s": 300},
    {"topic": "服务群众：两新党建如何走到群众身边", "duration_s": 240},
    {"topic": "基层民主：让党员群众真正参与决策", "duration_s": 180},
]
WIDGETS = "widgets=pk,timer,likes,question,viewers,floor"

# The twelve devices: two Chromium phones (P1, P2), ten sockets (S1..S10). None: no stance.
PRE = {"P1": "a", "P2": "u", "S1": "a", "S2": "a", "S3": "a", "S4": "a", "S5": "b", "S6": "b", "S7": "b"}
PRE |= {"S8": "u", "S9": "u", "S10": None}
POST = {"P1": "b", "P2": "b", "S1": "a", "S2": "a", "S3": "b", "S4": "u", "S5": "b", "S6": "b", "S7": "a"}
POST |= {"S8": "a", "S9": "b", "S10": "a"}
SEALED_VOTES = {"S1": "a", "S2": "a", "S3": "b", "S4": "b", "S5": "b", "S6": "b", "S7": "b"}  # and P1: b


def expected():
    """The verdict by the domain's own rules, from the stances above."""
    matrix = v.empty_matrix()
    for dev, pre in PRE.items():
        if pre and POST.get(dev):
            matrix[pre][POST[dev]] += 1
    post = {s: sum(1 for x in POST.values() if x == s) for s in v.STANCES}
    return matrix, v.swing(matrix), v.shares(post)


def pct(share: float) -> str:
    return f"{round(share * 100)}%"


async def text(page, selector: str) -> str:
    return ((await page.text_content(selector)) or "").strip()


async def attr_num(page, selector: str, name: str) -> int:
    value = await page.get_attribute(selector, name)
    return int(value or 0)


class Frames:
    """Every frame a page receives on its sockets, in order (attach before it connects)."""

    def __init__(self, page) -> None:
        self.frames: list[dict] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._add))

    def _add(self, payload) -> None:
        if isinstance(payload, str):
            self.frames.append(json.loads(payload))


async def shoot_overlay(page, shots, name: str, size=(1920, 1080), layout="landscape") -> None:
    await page.evaluate("document.fonts.ready.then(() => true)")
    await animations_done(page, "#moment")
    await animations_done(page, ".safe > .region-top")
    png = await page.screenshot(omit_background=True)
    (shots / f"{name}.png").write_bytes(png)
    composite(png, layout).save(shots / f"{name}-studio.png")
    problems = check_safe(await page.evaluate(MEASURE), *size)
    assert not problems, (name, problems)


async def shoot_phones(phones, shots, name: str, selector: str) -> None:
    from playwright.async_api import expect

    for label, page in phones.items():
        await expect(page.locator("#toast")).not_to_have_class(re.compile(r"\bon\b"), timeout=6000)  # not over the card
        await page.locator(selector).scroll_into_view_if_needed()
        await page.screenshot(path=str(shots / f"{name}-{label}.png"))
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= page.viewport_size["width"], (name, label, width)  # nothing sideways


async def open_phone(browser, base: str, slug: str, options: dict):
    ctx = await browser.new_context(**options)
    page = await ctx.new_page()
    errors = PageErrors(page)
    frames = Frames(page)
    await page.goto(f"{base}/s/{slug}")
    await wait_until(lambda: _ready(page), timeout=20)
    return ctx, page, errors, frames


async def _ready(page) -> bool:
    """The page has its snapshot: the round card says the show is about to start."""
    return await text(page, "#round .topic") == "节目即将开始"


async def give_floor(console, key: str, who: str, at_least_ms: int) -> None:
    """Press the console's key for `who` and let them speak until the console counts `at_least_ms`."""
    await console.keyboard.press(key)
    row = f"#floor tbody tr[data-who={who}]"
    await wait_until(lambda: _at_least(console, row, at_least_ms), timeout=30)


async def _at_least(page, row: str, ms: int) -> bool:
    return await attr_num(page, row, "data-show-ms") >= ms


async def test_a_show_with_a_swing_a_sealed_round_and_a_speaking_clock(browser, server, clients, shots_dir):
    from playwright.async_api import expect

    shots = shots_dir / "verdict"
    shots.mkdir(parents=True, exist_ok=True)
    slug = create_show(server.url, sides=SIDES, plan=PLAN)
    matrix, swing, post_shares = expected()

    host = await signed_in_context(browser, server.url)
    console = await host.new_page()
    console_errors = PageErrors(console)
    await console.goto(f"{server.url}/console/{slug}")
    await expect(console.locator("#conn-status")).to_have_attribute("data-state", "open", timeout=10_000)
    octx = await browser.new_context(viewport={"width": 1920, "height": 1080})
    overlay = await octx.new_page()
    overlay_errors = PageErrors(overlay)
    overlay_frames = Frames(overlay)
    await overlay.goto(f"{server.url}/overlay/{slug}?{WIDGETS}")
    await wait_until(lambda: overlay.evaluate("document.querySelector('#pk.live') !== null"), timeout=10)
    p1ctx, p1, p1_errors, p1_frames = await open_phone(browser, server.url, slug, PHONE)
    p2ctx, p2, p2_errors, p2_frames = await open_phone(browser, server.url, slug, NARROW)
    phones = {"390": p1, "360": p2}
    sockets = {f"S{i}": await clients.audience(slug) for i in range(1, 11)}

    # -- the pre-debate stance: the console opens it, the phones show the card
    pre_row = console.locator("#verdict .stance-row[data-phase=pre]")
    await pre_row.locator("button").click()
    await expect(pre_row).to_have_attribute("data-state", "open")
    for page in phones.values():
        await expect(page.locator("#stance")).to_be_visible()
        await expect(page.locator("#stance .stance-title")).to_have_text("辩论开始前，你支持哪一方？")
        await expect(page.locator("#stance button[data-stance=a] .label")).to_have_text("支持红方")
        await expect(page.locator("#stance button[data-stance=b] .label")).to_have_text("支持蓝方")
        await expect(page.locator("#stance button[data-stance=u] .label")).to_have_text("还没想好")
    # P1 first taps blue, then changes its mind (changeable while open); P2 is undecided
    await p1.click("#stance button[data-stance=b]")
    await expect(p1.locator("#stance button[data-stance=b]")).to_have_attribute("aria-pressed", "true")
    await p1.click("#stance button[data-stance=a]")
    await expect(p1.locator("#stance button[data-stance=a]")).to_have_class(re.compile(r"\bchosen\b"))
    await expect(p1.locator("#stance button[data-stance=b]")).to_have_attribute("aria-pressed", "false")
    await p2.click("#stance button[data-stance=u]")
    await expect(p2.locator("#stance button[data-stance=u]")).to_have_attribute("aria-pressed", "true")
    for dev, side in PRE.items():
        if dev in sockets and side:
            assert (await sockets[dev].request({"type": "stance", "phase": "pre", "side": side}))["counted"] is True
    pre_counts = {s: sum(1 for x in PRE.values() if x == s) for s in v.STANCES}
    await expect(pre_row.locator(".phase-counts")).to_have_text(
        f"红方 {pre_counts['a']} · 蓝方 {pre_counts['b']} · 未定 {pre_counts['u']}"
    )
    # the overlay asks the room to answer, and counts who has
    await expect(overlay.locator("#split")).to_have_attribute("data-state", "stance")
    await expect(overlay.locator("#split .split-wait")).to_contain_text(f"{sum(pre_counts.values())} 人已表态")
    await shoot_phones(phones, shots, "phone-pre-stance", "#stance")
    await shoot_overlay(overlay, shots, "overlay-pre-stance")
    await pre_row.locator("button").click()
    await expect(pre_row).to_have_attribute("data-state", "closed")
    for page in phones.values():
        await expect(page.locator("#stance")).to_be_hidden()

    # -- round 1: the clock gives the floor by key; red speaks much more: the console warns
    sealed_box = console.locator("#round-sealed")
    await expect(sealed_box).not_to_be_checked()  # not the final round
    await console.click("#round [data-action='round.start']")
    await expect(console.locator("#round")).to_have_attribute("data-status", "running")
    await expect(console.locator("#floor .floor-btn[data-holder=a] kbd")).to_have_text("1")
    await give_floor(console, "1", "a", 8000)
    await expect(console.locator("#floor .floor-btn[data-holder=a]")).to_have_attribute("aria-pressed", "true")
    await expect(overlay.locator("#floor")).to_have_attribute("data-holder", "a")
    await expect(overlay.locator("#floor .floor-row[data-who=a]")).to_have_class(re.compile(r"\bon\b"))
    await give_floor(console, "2", "b", 2000)
    await give_floor(console, "3", "host", 1000)
    await console.keyboard.press("0")
    await expect(console.locator("#floor")).to_have_attribute("data-holder", "")
    await expect(console.locator("#floor .floor-warn")).to_be_visible()
    await expect(console.locator("#floor .floor-warn")).to_contain_text("红方全场发言多出")
    for dev, side in (("S1", "a"), ("S2", "b"), ("S3", "b")):
        await sockets[dev].request({"type": "vote", "side": side})
    await console.click("#round [data-action='round.end']")
    await expect(console.locator("#round")).to_have_attribute("data-status", "finished")

    # -- round 2: blue catches up a little
    await expect(sealed_box).not_to_be_checked()
    await console.click("#round [data-action='round.start']")
    await expect(console.locator("#round .round-no")).to_have_text("第2轮")
    await give_floor(console, "2", "b", 7000)  # the show's total: 2 s in round 1, 5 s more now
    await console.keyboard.press("0")
    await expect(console.locator("#floor")).to_have_attribute("data-holder", "")
    await console.click("#round [data-action='round.end']")
    await expect(console.locator("#round")).to_have_attribute("data-status", "finished")

    # -- round 3, the final planned one: sealed by default
    await expect(sealed_box).to_be_checked()
    await console.click("#round [data-action='round.start']")
    await expect(console.locator("#round .round-no")).to_have_text("第3轮")
    await expect(sealed_box).to_be_disabled()
    sealed_from = {"p1": len(p1_frames.frames), "p2": len(p2_frames.frames), "overlay": len(overlay_frames.frames)}
    await expect(p1.locator("#vote")).to_be_visible()
    await p1.click("button.vote[data-side=b]")
    await expect(p1.locator("button.vote[data-side=b]")).to_have_attribute("aria-pressed", "true")
    for dev, side in SEALED_VOTES.items():
        assert (await sockets[dev].request({"type": "vote", "side": side}))["type"] == "ack"
    split = {"a": 2, "b": 6}
    ballots = sum(split.values())
    # the console sees the live split; phones and the overlay the number of ballots only
    await expect(console.locator("#stat-votes")).to_have_text(f"{split['a']} : {split['b']}")
    await expect(console.locator("#round .sealed-live")).to_contain_text(f"{ballots} 人已投票")
    await expect(console.locator("#round .live-split")).to_have_text(f"实时票数：红方 {split['a']} : {split['b']} 蓝方")
    await expect(overlay.locator("#split")).to_have_attribute("data-state", "sealed")
    await expect(overlay.locator("#split .split-wait")).to_contain_text(f"{ballots} 人已投票")
    for page in phones.values():
        await expect(page.locator("#vote .vote-sealed .ballots")).to_have_text(f"{ballots} 人已投票")
    for name, page in (("overlay", overlay), *phones.items()):
        shown = await page.evaluate("document.body.innerText")
        assert f"{split['a']} : {split['b']}" not in shown and f"{split['a']}:{split['b']}" not in shown, name
        nums = await page.evaluate(
            "[...document.querySelectorAll('.split-num')].map((n) => n.textContent + (n.dataset.value || ''))"
        )
        assert not any(nums), (name, nums)
    # a phone that reloads mid-round gets the number of ballots only, from its snapshot
    await p2.reload()
    await expect(p2.locator("#vote .vote-sealed .ballots")).to_have_text(f"{ballots} 人已投票", timeout=20_000)
    assert any(f.get("type") == "snapshot" for f in p2_frames.frames[sealed_from["p2"] :])
    await shoot_phones(phones, shots, "phone-sealed", "#vote")
    await shoot_overlay(overlay, shots, "overlay-sealed")
    await console.screenshot(path=str(shots / "console-sealed-1280.png"))

    # -- the reveal at round.end, everywhere at once
    await console.click("#round [data-action='round.end']")
    # (after round 2's result, if it is still on: moments play in turn)
    await expect(overlay.locator("#moment")).to_have_attribute("data-kind", "reveal", timeout=15_000)
    await expect(overlay.locator("#moment")).to_have_class(re.compile(r"\bon\b"))
    await expect(overlay.locator("#moment .mo-title")).to_have_text("第3轮结果揭晓")
    await expect(overlay.locator("#moment .mo-num[data-side=a]")).to_have_text(str(split["a"]))
    await expect(overlay.locator("#moment .mo-num[data-side=b]")).to_have_text(str(split["b"]))
    await expect(overlay.locator("#moment .mo-name")).to_have_text(SIDES["b"]["guest"])
    for page in phones.values():
        await expect(page.locator("#round .round-result")).to_have_text(
            f"第3轮结果 · {split['a']} : {split['b']} · {SIDES['b']['guest']} · 已揭晓"
        )
    # before the reveal no frame to a phone or the overlay carried round 3's split
    for name, frames, start in (
        ("p1", p1_frames.frames, sealed_from["p1"]),
        ("p2", p2_frames.frames, sealed_from["p2"]),
        ("overlay", overlay_frames.frames, sealed_from["overlay"]),
    ):
        reveal = next(
            i
            for i, f in enumerate(frames)
            if f.get("type") == "round" and f["round"]["index"] == 3 and f["round"]["status"] == "finished"
        )
        assert reveal > start, name
        for f in frames[start:reveal]:
            if f.get("type") in ("tally", "snapshot"):
                tally = f if f["type"] == "tally" else f["show"]["tally"]
                assert tally.get("votes") is None, (name, f)
        assert frames[reveal]["rounds"][-1]["votes"] == split
    await shoot_phones(phones, shots, "phone-revealed", "#round")
    await shoot_overlay(overlay, shots, "overlay-reveal")

    # -- the post-debate stance, then the swing verdict
    post_row = console.locator("#verdict .stance-row[data-phase=post]")
    await post_row.locator("button").click()
    await expect(post_row).to_have_attribute("data-state", "open")
    for page in phones.values():
        await expect(page.locator("#stance .stance-title")).to_have_text("辩论结束了，现在你支持哪一方？")
        await expect(page.locator("#stance button.chosen")).to_have_count(0)  # a new phase: no choice yet
        await page.click("#stance button[data-stance=b]")
        await expect(page.locator("#stance button[data-stance=b]")).to_have_attribute("aria-pressed", "true")
    for dev, side in POST.items():
        if dev in sockets:
            await sockets[dev].request({"type": "stance", "phase": "post", "side": side})
    await expect(post_row.locator(".phase-counts")).to_have_text(
        f"红方 {sum(1 for x in POST.values() if x == 'a')} · 蓝方 {sum(1 for x in POST.values() if x == 'b')}"
        f" · 未定 {sum(1 for x in POST.values() if x == 'u')}"
    )
    await post_row.locator("button").click()
    await expect(post_row).to_have_attribute("data-state", "closed")

    # the console: the matrix, the swing, the raw shares after
    for p in v.STANCES:
        for q in v.STANCES:
            await expect(console.locator(f"#matrix tr[data-pre={p}] td[data-post={q}]")).to_have_text(str(matrix[p][q]))
    await expect(console.locator("#verdict .swing-line")).to_contain_text(
        f"前后都表态 {swing['devices']} 人：红方 {swing['gain']['a']:+.1f}，蓝方 {swing['gain']['b']:+.1f}"
    )
    await expect(console.locator("#verdict .swing-line")).to_contain_text("蓝方争取到更多观众")
    await expect(console.locator("#verdict .post-line")).to_contain_text(f"蓝方 {pct(post_shares['b'])}")
    await console.locator("#verdict").scroll_into_view_if_needed()
    await console.screenshot(path=str(shots / "console-verdict-1280.png"))

    # the overlay: the swing, before -> after, and the raw shares after
    await expect(overlay.locator("#moment")).to_have_attribute("data-kind", "swing", timeout=20_000)
    await check_swing_on_air(overlay, swing, post_shares)
    await shoot_overlay(overlay, shots, "overlay-swing")
    # the phones: the same verdict
    for page in phones.values():
        card = page.locator("#swing")
        await expect(card).to_be_visible()
        await expect(card.locator(".swing-headline")).to_have_text("蓝方争取到更多观众")
        await expect(card.locator(".sw-row[data-side=b] .sw-shares")).to_have_text(
            f"辩论前 {pct(swing['before']['b'])} → 辩论后 {pct(swing['after']['b'])}"
        )
        await expect(card.locator(".sw-row[data-side=b] .sw-gain")).to_have_text(f"+{swing['gain']['b']} 个百分点")
        await expect(card.locator(".sw-row[data-side=a] .sw-gain")).to_have_text(f"−{-swing['gain']['a']} 个百分点")
        await expect(card.locator(".swing-post")).to_have_text(post_line(post_shares))
        await expect(card.locator(".swing-note")).to_contain_text(f"只计入辩论前后都表态的 {swing['devices']} 台设备")
    await shoot_phones(phones, shots, "phone-swing", "#swing")

    # -- speaking times: the rounds' figures, on the overlay, the console and the report
    rounds = [f for f in overlay_frames.frames if f.get("type") == "round" and f.get("rounds")][-1]["rounds"]
    floor = {who: sum(r["floor"][who] for r in rounds) for who in ("a", "b", "host")}
    assert floor["a"] >= 8000 and floor["b"] >= 7000 and floor["host"] >= 1000, floor
    assert rounds[0]["floor"]["a"] >= 8000 and rounds[1]["floor"]["a"] == 0 and rounds[2]["sealed"] is True
    for who in ("a", "b", "host"):
        row = overlay.locator(f"#floor .floor-row[data-who={who}]")
        await expect(row).to_have_attribute("data-ms", str(floor[who]))
        await expect(row.locator(".floor-time")).to_have_text(clock(floor[who]))
        await expect(console.locator(f"#floor tbody tr[data-who={who}] .show-ms")).to_have_text(clock(floor[who]))
    names = await overlay.evaluate("[...document.querySelectorAll('#floor .floor-name')].map((n) => n.textContent)")
    assert names == ["红方", "蓝方", "主持人"]

    # -- a reconnecting overlay shows the swing and the clock at once, from its snapshot
    rctx = await browser.new_context(viewport={"width": 1920, "height": 1080})
    again = await rctx.new_page()
    again_errors = PageErrors(again)
    await again.goto(f"{server.url}/overlay/{slug}?{WIDGETS}")
    await expect(again.locator("#moment")).to_have_attribute("data-kind", "swing", timeout=5000)
    await expect(again.locator("#floor .floor-row[data-who=a]")).to_have_attribute("data-ms", str(floor["a"]))
    await check_swing_on_air(again, swing, post_shares)
    await shoot_overlay(again, shots, "overlay-reconnected")
    # and in the vertical (9:16) layout, the swing and the clock stay inside the safe areas too
    vctx = await browser.new_context(viewport={"width": 1080, "height": 1920})
    vertical = await vctx.new_page()
    vertical_errors = PageErrors(vertical)
    await vertical.goto(f"{server.url}/overlay/{slug}?{WIDGETS}&layout=vertical")
    await expect(vertical.locator("#moment")).to_have_attribute("data-kind", "swing", timeout=5000)
    await expect(vertical.locator("#floor")).to_have_class(re.compile(r"\blive\b"))
    await shoot_overlay(vertical, shots, "overlay-vertical-swing", size=(1080, 1920), layout="vertical")

    # -- the report
    with httpx.Client(base_url=server.url, cookies=host_cookies(server.url)) as http:
        report = http.get(f"/shows/{slug}/report").text
    table = re.search(r'<table class="data matrix" id="matrix">.*?</table>', report, re.S).group(0)
    cells = [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', table)]
    assert cells == [matrix[p][q] for p in v.STANCES for q in v.STANCES]
    shares = plain(re.search(r'id="swing-shares">(.*?)</p>', report, re.S).group(1))
    assert f"蓝方 {pct(swing['before']['b'])} → {pct(swing['after']['b'])}" in shares
    post = plain(re.search(r'id="post-shares">(.*?)</p>', report, re.S).group(1))
    assert f"（{len(POST)} 人）" in post and f"蓝方 {pct(post_shares['b'])}" in post
    total = re.search(r'<tr id="floor-total">(.*?)</tr>', report, re.S).group(1)
    assert re.findall(r'<td class="num">([^<]*)</td>', total) == [clock(floor[w]) for w in ("a", "b", "host")]
    assert "封存" in report

    # -- the end of the show: the final result carries the swing; the phones keep it
    end = console.locator("#round [data-action='show.end']")
    await end.click()
    await end.click()
    await expect(overlay.locator("#moment")).to_have_attribute("data-kind", "final", timeout=10_000)
    await expect(overlay.locator("#moment .mo-swing .msw-row[data-side=b] .msw-gain")).to_have_text(
        f"+{swing['gain']['b']} 个百分点"
    )
    await shoot_overlay(overlay, shots, "overlay-final")
    for page in phones.values():
        await expect(page.locator("#ended")).to_be_visible()
        await expect(page.locator("#swing .swing-headline")).to_have_text("蓝方争取到更多观众")
    await shoot_phones(phones, shots, "phone-ended", "#swing")

    for errors in (console_errors, overlay_errors, p1_errors, p2_errors, again_errors, vertical_errors):
        assert not errors.errors, errors.errors
    for ctx in (host, octx, p1ctx, p2ctx, rctx, vctx):
        await ctx.close()


def post_line(shares: dict) -> str:
    a, b, u = (pct(shares[s]) for s in v.STANCES)
    return f"辩论后全部表态：红方 {a} · 蓝方 {b} · 还没想好 {u}"


def plain(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def clock(ms: int) -> str:
    s = ms // 1000
    return f"{s // 60}:{s % 60:02d}"


async def check_swing_on_air(page, swing, post_shares) -> None:
    from playwright.async_api import expect

    moment = page.locator("#moment")
    await expect(moment).to_have_class(re.compile(r"\bon\b"))
    await expect(moment.locator(".mo-title")).to_have_text("观众立场变化")
    await expect(moment.locator(".mo-name")).to_have_text("蓝方争取到更多观众")
    for side in ("a", "b"):
        row = moment.locator(f".msw-row[data-side={side}]")
        before, after = pct(swing["before"][side]), pct(swing["after"][side])
        await expect(row.locator(".msw-fig")).to_have_text(f"{before} → {after}")
        gain = swing["gain"][side]
        await expect(row.locator(".msw-gain")).to_have_text(f"{'+' if gain > 0 else '−'}{abs(gain)} 个百分点")
    await expect(moment.locator(".msw-post")).to_have_text(post_line(post_shares))
    await expect(moment.locator(".msw-note")).to_contain_text(str(swing["devices"]))
