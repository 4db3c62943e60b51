"""The question desk (issue 16) through the real pages in Chromium: two consoles that see
each other, cluster cards merged, split and undone by keyboard, "我也想问" from a real phone,
the public counter, and how fast a host moderates by keyboard alone. The tests that take
`desk` run on the embedded store and on two processes sharing a real Redis (one console
on each)."""

import json
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from browser import CONSOLE as LAPTOP
from browser import NARROW, PHONE, PageErrors, SentFrames
from conftest import TOKEN, Clients, Server, create_show, wait_until

from server.i18n import STRINGS

pytestmark = pytest.mark.browser

ZH = STRINGS["zh-CN"]
SHOTS = Path("/work/shots/desk")


def t(key: str, **kw) -> str:
    text = ZH[key]
    for k, v in kw.items():
        text = text.replace("{" + k + "}", str(v))
    return text


@dataclass
class Desk:
    """Where the pages go: `one` and `two` (the same server, or two processes on one
    Redis), and WebSocket clients on `one`."""

    one: Server
    two: Server
    clients: Clients
    mode: str


@pytest.fixture(params=["embedded", pytest.param("redis", marks=pytest.mark.redis)])
async def desk(request, server):
    if request.param == "embedded":
        one = two = server
    else:
        fresh_server = request.getfixturevalue("fresh_server")
        redis_server = request.getfixturevalue("redis_server")
        env = {"REDIS_URL": redis_server.url, "REDIS_PREFIX": f"desk{time.monotonic_ns()}"}
        one, two = fresh_server(**env), fresh_server(**env)
    made = Clients(one)
    yield Desk(one, two, made, request.param)
    await made.close()


@pytest.fixture
def shots():
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


async def sign_in(context, base: str) -> None:
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.fill("input[name=token]", TOKEN)
    await page.click("button[type=submit], input[type=submit]")
    await page.wait_for_load_state()
    await page.close()


async def console_page(browser, base: str, slug: str, name: str):
    """A moderator's console, signed in afresh (a moderator of their own), named."""
    from playwright.async_api import expect

    ctx = await browser.new_context(**LAPTOP)
    await sign_in(ctx, base)
    page = await ctx.new_page()
    errors = PageErrors(page)
    await page.goto(f"{base}/console/{slug}")
    await expect(page.locator("#conn-status")).to_have_attribute("data-state", "open", timeout=15_000)
    await page.fill("#desk-name", name)
    await page.press("#desk-name", "Enter")  # the name goes out (hello) and the keys are the desk's again
    return page, errors


async def phone_page(browser, base: str, slug: str, size=PHONE):
    from playwright.async_api import expect

    ctx = await browser.new_context(**size)
    page = await ctx.new_page()
    errors = PageErrors(page)
    sent = SentFrames(page)
    await page.goto(f"{base}/s/{slug}")
    await expect(page.locator("#entering")).to_be_hidden(timeout=20_000)
    await expect(page.locator("#q-counts")).not_to_be_empty(timeout=15_000)
    return page, errors, sent


async def ask_on_phone(phone, text: str, side: str = "") -> str:
    """Ask through the form, addressed to a side ("a", "b" or "" for both); the id the page got."""
    from playwright.async_api import expect

    await phone.fill("#ask textarea[name=text]", text)
    await phone.click(f".ask-to [data-side={side or 'both'}] .to-label")
    await phone.click("#ask button[type=submit]")
    item = phone.locator("#questions li.mine", has_text=text)
    await expect(item).to_be_visible(timeout=10_000)
    return await item.get_attribute("data-id")


async def ask(clients, slug: str, text: str, side: str | None = None) -> str:
    phone = await clients.audience(slug)
    return (await phone.request({"type": "ask", "text": text, **({"side": side} if side else {})}))["question"]


def card(page, qid: str):
    return page.locator(f"#queue li.qi[data-id='{qid}']")


async def cursor_on(page, qid: str):
    from playwright.async_api import expect

    await expect(page.locator(f"#queue [data-id='{qid}'].cursor")).to_have_count(1)


ROWS = """() => [...document.querySelectorAll('#queue li.qi:not([hidden]), #queue .qi-members:not([hidden]) .qm')]
  .map((n) => [n.dataset.id, n.classList.contains('cursor')])"""


async def press_until_cursor(page, qid: str, most: int = 40) -> None:
    """Walk the cursor with the keyboard (J down, K up) to a question."""
    for _ in range(most):
        rows = await page.evaluate(ROWS)
        ids = [r[0] for r in rows]
        at = next((i for i, r in enumerate(rows) if r[1]), None)
        if at is not None and ids[at] == qid:
            return
        await page.keyboard.press("k" if at is not None and qid in ids and ids.index(qid) < at else "j")
    raise AssertionError(f"the cursor never reached {qid}")


async def queue_order(page) -> list[str]:
    return await page.evaluate(
        "() => [...document.querySelectorAll('#queue > li.qi')].filter((n) => !n.hidden).map((n) => n.dataset.id)"
    )


def no_errors(*errors):
    for e in errors:
        assert not e.errors, e.errors


# -- (a) two consoles on one show ---------------------------------------------------------------


async def test_two_consoles_see_each_other_and_the_second_feature_is_refused_by_name(browser, desk, shots):
    from playwright.async_api import expect

    slug = create_show(desk.one.url)
    one, e1 = await console_page(browser, desk.one.url, slug, "甲")
    two, e2 = await console_page(browser, desk.two.url, slug, "乙")
    qid = await ask(desk.clients, slug, "王书记，医院党建怎样让病人少跑腿？", side="a")
    other = await ask(desk.clients, slug, "志愿服务怎么和社区治理结合？", side="b")
    # each console's cursor rests on a card: the other console shows who is on it
    await expect(card(two, qid).locator(".qi-here")).to_have_text(t("host.desk.here", names="甲"), timeout=10_000)
    await expect(card(one, qid).locator(".qi-here")).to_have_text(t("host.desk.here", names="乙"), timeout=10_000)
    await expect(card(one, qid).locator(".qi-side")).to_have_text(t("host.desk.to_side", name="红方"))
    # 乙 moves on: 甲 sees 乙 leave this card for the next
    await press_until_cursor(two, other)
    await expect(card(one, other).locator(".qi-here")).to_have_text(t("host.desk.here", names="乙"), timeout=10_000)
    await expect(card(one, qid).locator(".qi-here")).to_be_hidden()
    # 甲 approves and airs it by keyboard; 乙's console says who did
    await cursor_on(one, qid)
    await one.keyboard.press("a")
    await expect(card(two, qid)).to_have_attribute("data-status", "approved", timeout=10_000)
    await expect(card(two, qid).locator(".qi-by")).to_have_text(t("host.desk.by", name="甲"))
    await press_until_cursor(one, qid)
    await one.keyboard.press("f")
    await expect(card(two, qid)).to_have_attribute("data-status", "featured", timeout=10_000)
    # 乙 tries to air it too: refused, and told by whom
    await press_until_cursor(two, qid)
    await two.keyboard.press("f")
    refused = t("host.desk.taken", name="甲", status=ZH["q.featured"])
    await expect(two.locator("#desk-status")).to_have_text(refused, timeout=10_000)
    await expect(two.locator("#desk-status")).to_have_attribute("data-kind", "conflict")
    await expect(two.locator("#toast")).to_have_text(refused)
    await two.screenshot(path=str(shots / f"console-conflict-{desk.mode}.png"))
    # 乙 marks it answered; 甲's "answered" after that is refused with 乙's name
    await two.keyboard.press("d")
    await expect(card(one, qid)).to_have_attribute("data-status", "answered", timeout=10_000)
    await expect(card(one, qid).locator(".qi-by")).to_have_text(t("host.desk.by", name="乙"))
    await press_until_cursor(one, qid)
    await one.keyboard.press("d")
    await expect(one.locator("#desk-status")).to_have_text(
        t("host.desk.taken", name="乙", status=ZH["q.answered"]), timeout=10_000
    )
    # answered on air, per side, live on both consoles
    for page in (one, two):
        await expect(page.locator("#desk-answered [data-side=a] .n")).to_have_text("1", timeout=10_000)
        await expect(page.locator("#desk-answered [data-side=b] .n")).to_have_text("0")
    # 甲 closes the console: 乙 no longer sees 甲 anywhere
    await press_until_cursor(two, other)
    await press_until_cursor(one, other)
    await expect(card(two, other).locator(".qi-here")).to_have_text(t("host.desk.here", names="甲"), timeout=10_000)
    await one.context.close()
    await expect(card(two, other).locator(".qi-here")).to_be_hidden(timeout=10_000)
    no_errors(e2)
    del e1


# -- (b) clusters: one card with the count; merge, split and undo by keyboard -----------------


async def test_phones_asking_the_same_thing_make_one_card_merged_split_and_undone_by_keyboard(browser, desk, shots):
    from playwright.async_api import expect

    slug = create_show(desk.one.url)
    console, errors = await console_page(browser, desk.two.url, slug, "小李")
    p1, pe1, _ = await phone_page(browser, desk.one.url, slug)
    p2, pe2, _ = await phone_page(browser, desk.two.url, slug, NARROW)
    q1 = await ask_on_phone(p1, "医院党建怎样让病人少跑腿？", side="a")
    q2 = await ask_on_phone(p2, "醫院黨建如何讓病人少跑腿", side="a")  # the same, in traditional characters
    q3 = await ask(desk.clients, slug, "看病排队时间长，医院有什么办法缩短？", side="a")  # reworded: the host merges it
    q4 = await ask(desk.clients, slug, "志愿服务怎么和社区治理结合？")
    # one card for q1 and q2, with the count; q3 (reworded) and q4 their own
    lead = card(console, q1)
    await expect(lead).to_have_attribute("data-members", "2", timeout=10_000)
    await expect(lead.locator(".qi-want")).to_have_text(t("host.desk.want", n=2))
    await expect(card(console, q2)).to_have_count(0)
    await expect(card(console, q3)).to_have_count(1)
    # the originals, one key away
    await press_until_cursor(console, q1)
    await console.keyboard.press("x")
    await expect(lead.locator(f".qm[data-id='{q2}'] .qm-text")).to_have_text("醫院黨建如何讓病人少跑腿")
    await console.keyboard.press("x")
    await expect(lead.locator(".qi-members")).to_be_hidden()
    # merge by keyboard: M on q3's card, move to q1's card, M again
    await press_until_cursor(console, q3)
    await console.keyboard.press("m")
    await expect(console.locator("#desk-merge")).to_be_visible()
    await press_until_cursor(console, q1)
    await console.keyboard.press("m")
    await expect(lead).to_have_attribute("data-members", "3", timeout=10_000)
    await expect(card(console, q3)).to_have_count(0)
    await expect(lead.locator(".qi-want")).to_have_text(t("host.desk.want", n=3))
    await expect(lead.locator(".qi-by")).to_have_text(t("host.desk.by", name="小李"))
    await console.screenshot(path=str(shots / f"console-cluster-merged-{desk.mode}.png"))
    # split by keyboard: S on the card opens it at its first original, S again takes it out
    await cursor_on(console, q1)
    await console.keyboard.press("s")
    await cursor_on(console, q2)
    await console.keyboard.press("s")
    await expect(card(console, q2)).to_have_count(1, timeout=10_000)
    await expect(lead).to_have_attribute("data-members", "2")
    # undo by keyboard: q2 is back on the card
    await console.keyboard.press("u")
    await expect(card(console, q2)).to_have_count(0, timeout=10_000)
    await expect(lead).to_have_attribute("data-members", "3")
    # approve the card: one press approves its three questions; the phones see one card of three
    await press_until_cursor(console, q1)
    await console.keyboard.press("a")
    for phone in (p1, p2):
        item = phone.locator(f"#questions li[data-cluster='{q1}']")
        await expect(item).to_have_attribute("data-want", "3", timeout=10_000)
        await expect(phone.locator(f"#questions li[data-cluster='{q1}']")).to_have_count(1)
    # U takes the whole press back: the three wait again
    await console.keyboard.press("u")
    await expect(lead).to_have_attribute("data-status", "pending", timeout=10_000)
    await expect(p1.locator(f"#questions li.mine[data-id='{q1}'] .tag")).to_have_text(ZH["q.pending"], timeout=10_000)
    await expect(p2.locator(f"#questions li[data-cluster='{q1}']")).to_have_count(0)  # not public any more
    assert q4
    no_errors(errors, pe1, pe2)


# -- (c) "我也想问" from a real phone moves a card up ---------------------------------------------


async def test_me_too_from_a_phone_moves_the_card_up_and_a_second_tap_is_refused(browser, desk, shots):
    from playwright.async_api import expect

    slug = create_show(desk.one.url)
    host = await desk.clients.console(slug)
    older = await ask(desk.clients, slug, "两新组织的党建怎样服务群众？", side="b")
    newer = await ask(desk.clients, slug, "园区里的志愿者怎么留得住？", side="a")
    for qid in (older, newer):
        assert (await host.request({"type": "question.approve", "question": qid}))["type"] == "ack"
    console, errors = await console_page(browser, desk.two.url, slug, "小李")
    await expect(console.locator("#queue > li.qi")).to_have_count(2, timeout=10_000)
    assert await queue_order(console) == [newer, older]  # the same weight: the newest first
    phone, perrors, sent = await phone_page(browser, desk.one.url, slug)
    button = phone.locator(f"#questions li[data-id='{older}'] button.upvote")
    await expect(button).to_have_text(re.compile(ZH["q.metoo"] + r"\s*1"))
    await button.click()
    await expect(button).to_be_disabled(timeout=10_000)
    await expect(button).to_have_text(re.compile(ZH["q.metoo_done"] + r"\s*2"))
    # the console's queue follows the weight: the older card is first now
    await expect(card(console, older).locator(".qi-want")).to_have_text(t("host.desk.want", n=2), timeout=10_000)
    await wait_until(lambda: _order_is(console, [older, newer]), timeout=10)
    # a second tap does nothing: the button refuses it and no second upvote leaves the page
    await button.click(force=True)
    await phone.reload()
    button = phone.locator(f"#questions li[data-id='{older}'] button.upvote")
    await expect(button).to_be_disabled(timeout=15_000)  # remembered by the server for this device
    await button.click(force=True)
    ups = [m for m in (json.loads(f) for f in sent.frames if isinstance(f, str)) if m.get("type") == "upvote"]
    assert len(ups) == 1, ups
    snap = (await desk.clients.console(slug)).frames[0]["show"]["questions"]
    assert {q["id"]: q["upvotes"] for q in snap} == {older: 1, newer: 0}
    no_errors(errors, perrors)


async def _order_is(page, ids) -> bool:
    return (await queue_order(page))[: len(ids)] == ids


# -- (d) the public counter --------------------------------------------------------------------


async def test_the_phone_counter_says_what_the_server_counted(browser, desk, shots):
    from playwright.async_api import expect

    slug = create_show(desk.one.url)
    host = await desk.clients.console(slug)
    phone, perrors, _ = await phone_page(browser, desk.two.url, slug)
    await expect(phone.locator("#q-counts")).to_have_text(t("q.counts", n=0, m=0, k=0))
    ids = [
        await ask(desk.clients, slug, f"第{i}个不同的问题：{w}", side=s)
        for i, (w, s) in enumerate(
            [("党课何时来园区", "a"), ("志愿者怎么招募", "b"), ("捐款怎么公开", None), ("考核怎么做", "a")]
        )
    ]
    await ask_on_phone(phone, "书记来了见面会怎么报名？", side="b")
    for qid in ids[:3]:
        assert (await host.request({"type": "question.approve", "question": qid}))["type"] == "ack"
    assert (await host.request({"type": "question.feature", "question": ids[0]}))["type"] == "ack"
    assert (await host.request({"type": "question.feature", "question": ids[1]}))["type"] == "ack"
    assert (await host.request({"type": "question.answered", "question": ids[1]}))["type"] == "ack"
    assert (await host.request({"type": "question.reject", "question": ids[3]}))["type"] == "ack"
    counts = (await desk.clients.audience(slug)).frames[0]["show"]["question_counts"]
    assert (counts["received"], counts["on_air"], counts["answered"]) == (5, 2, 1)
    want = t("q.counts", n=counts["received"], m=counts["on_air"], k=counts["answered"])
    await expect(phone.locator("#q-counts")).to_have_text(want, timeout=10_000)
    # and live on the phone as the next one is answered
    assert (await host.request({"type": "question.answered", "question": ids[0]}))["type"] == "ack"
    await expect(phone.locator("#q-counts")).to_have_text(t("q.counts", n=5, m=2, k=2), timeout=10_000)
    no_errors(perrors)


# -- screenshots: the console with clusters and presence; phones with me-too and the counter ----


async def test_desk_screenshots(browser, server, clients, shots):
    from playwright.async_api import expect

    slug = create_show(server.url)
    host = await clients.console(slug)
    asked = [
        ("王书记，医院党建怎样让病人少跑腿？", "a"),
        ("醫院黨建如何讓病人少跑腿", "a"),
        ("医院党建怎么让病人少跑腿呢", "a"),
        ("杨会长，公益组织的善款在哪里可以查到？", "b"),
        ("捐款怎么做到公开透明？", "b"),
        ("两新组织怎么吸引年轻人入党？", None),
        ("党课什么时候来我们园区？", None),
        ("志愿者怎么留住？", "b"),
    ]
    ids = [await ask(clients, slug, text, side) for text, side in asked]
    for qid in ids[3:7]:
        assert (await host.request({"type": "question.approve", "question": qid}))["type"] == "ack"
    assert (await host.request({"type": "question.approve", "question": ids[0]}))["type"] == "ack"
    assert (await host.request({"type": "question.feature", "question": ids[5]}))["type"] == "ack"
    assert (await host.request({"type": "question.answered", "question": ids[5]}))["type"] == "ack"
    for qid in (ids[3], ids[0]):
        for _ in range(2):
            assert (await (await clients.audience(slug)).request({"type": "upvote", "question": qid}))["type"] == "ack"
    one, e1 = await console_page(browser, server.url, slug, "甲")
    two, e2 = await console_page(browser, server.url, slug, "乙")
    await press_until_cursor(two, ids[3])
    await expect(card(one, ids[3]).locator(".qi-here")).to_be_visible(timeout=10_000)
    await press_until_cursor(one, ids[0])
    await one.keyboard.press("x")
    await one.evaluate("document.fonts.ready.then(() => true)")
    await one.screenshot(path=str(shots / "console-1280x800.png"))
    for size, name in ((PHONE, "phone-390x844"), (NARROW, "phone-360x780")):
        phone, perrors, _ = await phone_page(browser, server.url, slug, size)
        button = phone.locator(f"#questions li[data-id='{ids[6]}'] button.upvote")
        await button.click()
        await expect(button).to_be_disabled(timeout=10_000)
        await phone.locator(".q-card").scroll_into_view_if_needed()
        await phone.evaluate("document.fonts.ready.then(() => true)")
        await phone.screenshot(path=str(shots / f"{name}.png"))
        await phone.screenshot(path=str(shots / f"{name}-full.png"), full_page=True)
        # nothing wider than the phone
        wide = await phone.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, wide
        no_errors(perrors)
    no_errors(e1, e2)


# -- (e) moderation speed, by keyboard only ----------------------------------------------------

SPEED_QUESTIONS = 36


@pytest.mark.parametrize("queue", ["distinct", "alike"])
async def test_moderation_speed_by_keyboard(browser, server, clients, shots, queue):
    """Moderate 36 waiting questions (approve, reject; some aired and answered) with the
    keyboard only, through the real console. Each press is timed from the key to the
    server's ack as the page shows it (#desk-status data-done); the figure is printed and
    kept in docs/question-desk.md."""
    from playwright.async_api import expect

    slug = create_show(server.url)
    # different questions: the first phrasing of each group of the labelled set
    rows = [json.loads(line) for line in (Path(__file__).parent / "data" / "questions.jsonl").open(encoding="utf-8")]
    if queue == "distinct":  # the first phrasing of 36 groups of the labelled set
        texts = list({r["group"]: r["text"] for r in reversed(rows)}.values())[:SPEED_QUESTIONS]
    else:  # 12 groups, each its first phrasing and two surface variants of it: the desk's clusters
        firsts = [r for r in rows if r.get("kind") == "base"][:12]
        texts = [v for r in firsts for v in (r["text"], r["text"].rstrip("？?") + "呢？", "请问" + r["text"])]
    for text in texts:
        await ask(clients, slug, text)
    console, errors = await console_page(browser, server.url, slug, "快手")
    await console.click("#filters button[data-filter=pending]")
    await console.locator("#queue").click(position={"x": 5, "y": 5})  # the keys belong to the page again
    await console.locator("#desk-name").evaluate("(n) => n.blur()")
    await expect(console.locator("#filters button[data-filter=pending] .n")).not_to_have_text("0", timeout=10_000)
    status = console.locator("#desk-status")
    cards = int(await console.locator("#filters button[data-filter=pending] .n").text_content())
    times: list[float] = []
    page_ms: list[float] = []
    keys = 0
    started = time.perf_counter()
    while True:
        waiting = int(await console.locator("#filters button[data-filter=pending] .n").text_content())
        if waiting == 0:
            break
        done = int(await status.get_attribute("data-done") or 0)
        key = "r" if keys % 4 == 3 else "a"
        t0 = time.perf_counter()
        await console.keyboard.press(key)
        keys += 1
        await expect(status).to_have_attribute("data-done", str(done + 1), timeout=10_000)
        times.append((time.perf_counter() - t0) * 1000)
        page_ms.append(float(await status.get_attribute("data-ms")))  # key to ack, as the page timed it
        assert keys <= SPEED_QUESTIONS * 2, "the desk did not move on"
    total = time.perf_counter() - started
    counts = {"approved": 0, "rejected": 0}
    for q in (await clients.console(slug)).frames[0]["show"]["questions"]:
        counts[q["status"]] = counts.get(q["status"], 0) + 1
    assert counts["approved"] + counts["rejected"] == SPEED_QUESTIONS, counts
    per_minute = len(times) / total * 60
    report_q = SPEED_QUESTIONS / total * 60
    report = {
        "presses": len(times),
        "seconds": round(total, 2),
        "cards": cards,
        "actions_per_minute": round(per_minute),
        "questions_per_minute": round(report_q),
        "press_to_ack_ms_p50": round(statistics.median(times), 1),
        "press_to_ack_ms_p95": round(sorted(times)[int(len(times) * 0.95) - 1], 1),
        "page_key_to_ack_ms_p50": statistics.median(page_ms),
        "page_key_to_ack_ms_p95": sorted(page_ms)[int(len(page_ms) * 0.95) - 1],
        "page_key_to_ack_ms_max": max(page_ms),
    }
    print(f"moderation speed ({queue}):", json.dumps(report))
    assert len(times) == cards  # one press per card: the cursor moved on by itself
    if queue == "alike":
        assert cards < SPEED_QUESTIONS, report  # alike questions came as one card
    assert per_minute >= 30, report  # the floor: 30 a minute
    await console.screenshot(path=str(shots / f"console-after-speed-{queue}.png"))
    no_errors(errors)


# -- sides: the filter and the balanced view, by keys -----------------------------------------


async def test_side_filter_and_the_balanced_view_by_keys(browser, server, clients):
    """V goes round the side filters: to red, to blue, to both, balanced, all (the digits
    are the speaking floor's)."""
    from playwright.async_api import expect

    slug = create_show(server.url)
    host = await clients.console(slug)
    reds = [await ask(clients, slug, text, "a") for text in ("党课何时来园区？", "医院怎么少排队？", "考核怎么做？")]
    blues = [await ask(clients, slug, text, "b") for text in ("善款在哪里查？", "志愿者怎么留住？")]
    both = await ask(clients, slug, "两位嘉宾怎么看年轻人入党？")
    for qid in [*reds, *blues, both]:
        assert (await host.request({"type": "question.approve", "question": qid}))["type"] == "ack"
    # red has answered one on air: the balanced view puts blue first
    assert (await host.request({"type": "question.answered", "question": reds[0]}))["type"] == "ack"
    console, errors = await console_page(browser, server.url, slug, "甲")
    await expect(console.locator("#desk-answered [data-side=a] .n")).to_have_text("1", timeout=10_000)
    await console.click("#filters button[data-filter=approved]")
    await console.locator("#desk-name").evaluate("(n) => n.blur()")
    approved_reds, newest_first = reds[1:], lambda ids: list(reversed(ids))
    await console.keyboard.press("v")  # a
    await wait_until(lambda: _order_is_exactly(console, newest_first(approved_reds)), timeout=10)
    await console.keyboard.press("v")  # b
    await wait_until(lambda: _order_is_exactly(console, newest_first(blues)), timeout=10)
    await console.keyboard.press("v")  # both
    await wait_until(lambda: _order_is_exactly(console, [both]), timeout=10)
    await console.keyboard.press("v")  # balanced
    balanced = [blues[1], approved_reds[1], both, blues[0], approved_reds[0]]
    await wait_until(lambda: _order_is_exactly(console, balanced), timeout=10)
    await expect(console.locator("#side-filters button[data-side=balanced]")).to_have_attribute("aria-pressed", "true")
    await console.keyboard.press("v")  # all
    await wait_until(lambda: _order_is_exactly(console, newest_first([*approved_reds, *blues, both])), timeout=10)
    no_errors(errors)


async def _order_is_exactly(page, ids) -> bool:
    return await queue_order(page) == ids
