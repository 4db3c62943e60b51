"""The season's pages in real Chromium, as a phone, a producer and OBS use them: the
roster and a profile, the poll on a phone (vote, change, closed), the request form
with errors then success, the inbox workflow, the month view, the dashboard's count,
the poll on air, and the live page after an episode. Screenshots go to SHOTS_DIR."""

import datetime
import io

import httpx
import pytest
from browser import CONSOLE as DESK
from browser import NARROW as SMALL
from browser import PHONE, STUDIO, PageErrors
from conftest import TOKEN, create_show, device_cookie, host_cookies, wait_until
from PIL import Image
from test_season_http import new_guest, new_poll, producer, request_body, unique, vote

pytestmark = pytest.mark.browser


async def signed_in(browser):
    ctx = await browser.new_context(**DESK)
    page = await ctx.new_page()
    await page.goto(f"{_base}/login")
    await page.fill("input[name=token]", TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    return ctx, page


_base = ""


@pytest.fixture(autouse=True)
def base(server):
    global _base
    _base = server.url
    return server.url


async def text_of(page, selector: str) -> str:
    return (await page.locator(selector).first.text_content() or "").strip()


async def test_the_roster_and_a_profile_on_a_phone_lead_to_the_request_form(browser, base, shots_dir):
    gid = new_guest(base, "郭本平", org="中粮东海粮油工业（张家港）有限公司", title="党办负责人", sector="soe",
                    topics=["国企党建"], contact="13900002222")  # fmt: skip
    for name, options in (("390", PHONE), ("360", SMALL)):
        ctx = await browser.new_context(**options)
        page = await ctx.new_page()
        errors = PageErrors(page)
        await page.goto(f"{base}/guests")
        card = page.locator(f".guest-card[data-id={gid}]")
        await card.scroll_into_view_if_needed()
        assert "郭本平" in await card.text_content() and "国企" in await card.text_content()
        await page.screenshot(path=str(shots_dir / f"season-roster-{name}.png"), full_page=True)
        await card.locator("a").click()
        await page.wait_for_url(f"**/guests/{gid}")
        assert await text_of(page, ".p-name") == "郭本平"
        assert await page.locator("#stats [data-stat=episodes]").text_content() == "0"
        assert "13900002222" not in await page.content()
        await page.screenshot(path=str(shots_dir / f"season-profile-{name}.png"), full_page=True)
        invite = page.locator("#invite-guest")
        assert await invite.is_visible()  # the sticky button, within the screen
        box = await invite.bounding_box()
        assert box["y"] + box["height"] <= options["viewport"]["height"] and box["width"] >= 300
        await invite.click()
        await page.wait_for_url("**/invite?guest=*")
        assert await page.locator(f"input[name=guest_ids][value={gid}]").is_checked()
        assert not await page.locator("input[name=guest_ids][value=any]").is_checked()
        assert not errors.errors, errors.errors
        await ctx.close()


async def test_a_poll_on_a_phone_votes_changes_and_is_refused_once_closed(browser, base, shots_dir):
    g1, g2 = new_guest(base, "王伟"), new_guest(base, "杨玭")
    slug = new_poll(base, [{"id": g1, "label": ""}, {"id": g2, "label": ""}])
    ctx = await browser.new_context(**PHONE)
    page = await ctx.new_page()
    errors = PageErrors(page)
    await page.goto(f"{base}/p/{slug}")
    # no device yet: the page gets one (proof of work), then the options work
    await wait_until(lambda: page.evaluate("document.body.dataset.device === 'yes'"), timeout=20)
    first = page.locator(f".option[data-id={g1}] button.opt")
    await first.click()
    await wait_until(lambda: page.locator(f".option[data-id={g1}].chosen").count(), timeout=10)
    assert "王伟" in await text_of(page, "#toast")
    await wait_until(lambda: _votes(base, slug) == {g1: 1, g2: 0}, timeout=10)
    await page.locator(f".option[data-id={g2}] button.opt").click()
    await wait_until(lambda: page.locator(f".option[data-id={g2}].chosen").count(), timeout=10)
    assert await page.locator(f".option[data-id={g1}].chosen").count() == 0
    await wait_until(lambda: _votes(base, slug) == {g1: 0, g2: 1}, timeout=10)  # one ballot, changed
    await wait_until(lambda: page.evaluate(f"document.querySelector('.option[data-id={g2}] .opt-votes').dataset.votes"
                                           " === '1'"), timeout=10)  # fmt: skip
    await page.screenshot(path=str(shots_dir / "season-poll-voted.png"), full_page=True)
    with producer(base) as http:
        assert http.post(f"/api/polls/{slug}/close").status_code == 200
    await first.click()  # the page does not know yet: the server says closed
    await wait_until(lambda: page.locator("#poll-closed:not([hidden])").count(), timeout=10)
    assert await page.locator("button.opt:not([disabled])").count() == 0
    await page.reload()
    assert await page.locator("button.opt[disabled]").count() == 2 and await page.locator("#poll-closed").is_visible()
    assert await page.locator(f".option[data-id={g2}].chosen").count() == 1  # its ballot stands
    await page.screenshot(path=str(shots_dir / "season-poll-closed.png"), full_page=True)
    assert _votes(base, slug) == {g1: 0, g2: 1}
    assert not [e for e in errors.errors if "409" not in e], errors.errors
    await ctx.close()


def _votes(base: str, slug: str) -> dict:
    return {o["id"]: o["votes"] for o in httpx.get(f"{base}/api/polls/{slug}").json()["options"]}


async def test_the_request_form_shows_each_error_keeps_what_was_typed_then_succeeds(browser, base, shots_dir):
    ctx = await browser.new_context(**PHONE)
    page = await ctx.new_page()
    errors = PageErrors(page)
    await page.goto(f"{base}/invite")
    await page.fill("input[name=unit]", "锦丰镇某民营企业")
    await page.fill("input[name=phone]", "0512-5812")
    await page.fill("input[name=topic]", "党员教育怎么做")
    await page.click("#invite-form button[type=submit]")
    await page.wait_for_load_state()
    assert await page.locator("#invite-errors").is_visible()
    for field in ("unit_type", "district", "audience", "dates", "contact", "phone", "consent"):
        assert await page.locator(f"#err-{field}").count() == 1, field
    assert await page.locator("#err-unit").count() == 0 and await page.locator("#err-topic").count() == 0
    assert "11 位手机号码" in await text_of(page, "#err-phone")
    assert await page.input_value("input[name=unit]") == "锦丰镇某民营企业"  # nothing typed is lost
    assert await page.input_value("input[name=phone]") == "0512-5812"
    assert await page.get_attribute("input[name=phone]", "aria-invalid") == "true"
    await page.screenshot(path=str(shots_dir / "season-invite-errors.png"), full_page=True)
    await page.select_option("select[name=unit_type]", "private")
    await page.fill("input[name=district]", "锦丰镇")
    await page.fill("input[name=audience]", "40")
    await page.fill("input[name=dates]", "十月上旬")
    await page.fill("input[name=contact]", "周女士")
    await page.fill("input[name=phone]", "139 1234 0000")
    await page.check("input[name=consent]")
    await page.click("#invite-form button[type=submit]")
    await page.wait_for_url("**/invite/done?id=*")
    rid = page.url.rsplit("=", 1)[1]
    assert rid in await text_of(page, "#invite-done .done-id")
    await page.screenshot(path=str(shots_dir / "season-invite-done.png"))
    with producer(base) as http:
        inv = http.get(f"/api/invitations/{rid}").json()
    assert (inv["phone"], inv["contact"], inv["audience"], inv["guest_ids"]) == ("13912340000", "周女士", 40, [])
    assert not [e for e in errors.errors if "status of 400" not in e], errors.errors  # the form came back 400
    await ctx.close()


async def test_the_inbox_workflow_in_the_browser(browser, base, shots_dir):
    gid = new_guest(base, "杨玭")
    rid = httpx.post(f"{base}/api/invitations", json=request_body(guest_id=gid, unit=unique("塘桥镇社区"))).json()["id"]
    ctx, page = await signed_in(browser)
    errors = PageErrors(page)
    await page.goto(f"{base}/season/requests?status=new")
    item = page.locator(f".req[data-id={rid}]")
    assert "13812349876" in await item.text_content()  # producers see the contact
    await page.screenshot(path=str(shots_dir / "season-inbox.png"), full_page=True)
    await item.locator("a").click()
    await page.wait_for_url(f"**/season/requests/{rid}")
    assert await page.locator(".move[data-to=scheduled]").count() == 0  # not straight from new
    await page.fill(".move-contacted input[name=by]", "小李")
    await page.click(".move-contacted button[type=submit]")
    await page.wait_for_url("**moved=contacted")
    day = (datetime.date.today() + datetime.timedelta(days=3)).isoformat()
    await page.fill(".move-scheduled input[name=date]", day)
    await page.fill(".move-scheduled input[name=place]", "社区党群服务中心")
    await page.select_option(".move-scheduled select[name=guest_id]", gid)
    assert await page.input_value(".move-scheduled input[name=by]") == "小李"  # remembered
    await page.click(".move-scheduled button[type=submit]")
    await page.wait_for_url("**moved=scheduled")
    await page.fill(".move-done input[name=attendance]", "52")
    await page.click(".move-done button[type=submit]")
    await page.wait_for_url("**moved=done")
    assert await page.get_attribute("#req-status", "data-status") == "done"
    assert await page.locator("#req-workflow form").count() == 0
    assert [await li.get_attribute("data-to") for li in await page.locator("#req-history li").all()] == [
        "done",
        "scheduled",
        "contacted",
        "new",
    ]
    assert "小李" in await page.locator("#req-history").text_content()
    await page.screenshot(path=str(shots_dir / "season-request-done.png"), full_page=True)
    assert not errors.errors, errors.errors
    await ctx.close()


async def test_the_month_view_and_the_dashboards_count(browser, base, shots_dir):
    gid = new_guest(base, "王伟")
    day = datetime.date.today().replace(day=15).isoformat()
    title = unique("书记来了")
    with producer(base) as http:
        tid = http.post("/api/talks", json={"kind": "meet", "title": title, "guest_ids": [gid], "date": day,
                                            "time": "19:00", "place": "市民广场"}).json()["id"]  # fmt: skip
        http.post("/api/talks", json={"kind": "lesson", "title": "党课", "guest_ids": [gid], "date": day,
                                      "place": "园区", "status": "done", "attendance": 30})  # fmt: skip
        sent = httpx.get(f"{base}/api/season/counts").json()["lessons_done"]
    ctx, page = await signed_in(browser)
    await page.goto(f"{base}/season/talks")
    cell = page.locator(f"#month td[data-date='{day}']")
    assert title in await cell.locator(f"a.ev[data-id={tid}]").text_content()
    await page.screenshot(path=str(shots_dir / "season-month.png"), full_page=True)
    await page.goto(f"{base}/season")
    assert await text_of(page, "#lessons-sent") == f"已送党课 {sent} 次"
    await page.screenshot(path=str(shots_dir / "season-dashboard.png"))
    await page.goto(f"{base}/season?lang=en")
    assert await text_of(page, "#lessons-sent") == f"{sent} talks given"
    await ctx.close()


async def test_the_poll_on_air_ranks_and_updates_over_a_transparent_stage(browser, base, shots_dir):
    options = [{"id": "a1", "label": "王伟"}, {"id": "b1", "label": "杨玭"}, {"id": "c1", "label": "姜忠宝"}]
    slug = new_poll(base, options)
    ctx = await browser.new_context(**STUDIO)
    page = await ctx.new_page()
    errors = PageErrors(page)
    await page.goto(f"{base}/overlay/poll/{slug}?top=2")
    await wait_until(lambda: page.locator("#poll.live").count(), timeout=10)
    assert await page.locator(".pw-row").count() == 2
    for option in ("b1", "b1", "c1"):
        assert vote(base, slug, device_cookie(base, "demo"), option).status_code == 200
    await wait_until(lambda: page.evaluate("document.querySelector('.pw-row').dataset.id === 'b1'"), timeout=10)
    await wait_until(lambda: page.evaluate("document.querySelector('.pw-row .pw-votes').textContent === '2'"),
                     timeout=10)  # fmt: skip
    order = "[...document.querySelectorAll('.pw-row')].map((r) => r.dataset.id).join()"
    await wait_until(lambda: page.evaluate(f"{order} === 'b1,c1'"), timeout=10)  # c1's vote may land a tick later
    png = await page.screenshot(omit_background=True)
    img = Image.open(io.BytesIO(png))
    assert img.getpixel((1800, 1000))[3] == 0 and img.getpixel((10, 10))[3] == 0  # transparent where no widget
    box = await page.locator("#poll").bounding_box()
    assert box["x"] >= 96 and box["y"] >= 54 and box["y"] + box["height"] <= 1080 - 54  # action-safe
    (shots_dir / "season-overlay-poll.png").write_bytes(png)
    assert not errors.errors, errors.errors
    await ctx.close()


async def test_after_an_episode_the_phone_shows_the_result_and_what_comes_next(browser, base, shots_dir):
    slug = create_show(base)
    later = (datetime.date.today() + datetime.timedelta(days=7)).isoformat()
    nxt = create_show(base, title=unique("下一期"), status="draft", date=later)
    ctx = await browser.new_context(**PHONE)
    page = await ctx.new_page()
    errors = PageErrors(page)
    await page.goto(f"{base}/s/{slug}")
    await wait_until(lambda: page.locator(".heart .guest").first.text_content(), timeout=20)
    assert await page.locator("#after").is_hidden()
    with httpx.Client(base_url=base, cookies=host_cookies(base)) as http:
        form = {
            "title": "测试节目",
            "date": "",
            "status": "ended",
            "a_name": "红方",
            "a_guest": "王伟",
            "a_org": "",
            "a_color": "#d7263d",
            "b_name": "蓝方",
            "b_guest": "杨玭",
            "b_org": "",
            "b_color": "#1b6fd1",
        }
        assert http.post(f"/shows/{slug}/edit", data=form).status_code == 303
    await wait_until(lambda: page.locator("#after:not([hidden])").count(), timeout=10)
    await wait_until(lambda: page.locator("#after .after-next:not([hidden])").count(), timeout=10)
    nxt_title = httpx.get(f"{base}/api/shows/{nxt}", cookies=host_cookies(base)).json()["show"]["title"]
    after = httpx.get(f"{base}/api/season/after/{slug}").json()
    if after["next"]["slug"] == nxt:  # another test's draft may come sooner
        assert await text_of(page, "#after .after-next-title") == nxt_title
    assert await text_of(page, "#final .final-name") == "平分秋色"  # the result is the page's own, once
    assert await page.locator("#after .after-result").count() == 0
    assert await page.get_attribute("#after .after-invite", "href") == "/invite"
    assert await page.get_attribute("#after .after-roster", "href") == "/guests"
    if after["poll"]:
        assert await page.locator("#after .after-poll").is_visible()
    await page.locator("#after").scroll_into_view_if_needed()
    await page.screenshot(path=str(shots_dir / "season-after.png"))
    assert not errors.errors, errors.errors
    await ctx.close()
