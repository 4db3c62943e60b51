"""The season over HTTP on a real server: the roster and its photos, season polls
(one ballot per device, changeable, closed → 409, held ballots, sealed splits), talk
requests and their workflow, public talks with sign-ups, the contact erasure sweep,
and contact data absent from every public answer and from the log."""

import io
import itertools
import re
import time

import httpx
import pytest
from conftest import create_show, device_cookie, host_cookies, wait_until
from PIL import Image

PHONE = "13812349876"
CONTACT = "联系人陈主任乙"
GUEST_CONTACT = "13900001111 微信 wwbang"
_n = itertools.count(1)


def xff(ip: str) -> dict:
    return {"X-Forwarded-For": ip}


def producer(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, cookies=host_cookies(base))


def unique(prefix: str) -> str:
    return f"{prefix}{int(time.time() * 1000) % 10**8}{next(_n)}"


def new_guest(base: str, name: str = "王伟", **fields) -> str:
    with producer(base) as http:
        r = http.post("/api/guests", json={"name": name, "org": "澳洋医院", "title": "党委副书记", "sector": "hospital",
                                           "bio": "简介", **fields})  # fmt: skip
        assert r.status_code == 201, r.text
        return r.json()["id"]


def request_body(**fields) -> dict:
    return {
        "unit": "南丰镇机电工业园区",
        "unit_type": "park",
        "district": "南丰镇",
        "contact": CONTACT,
        "phone": PHONE,
        "topic": "非公企业党建",
        "audience": 47,
        "dates": "九月中旬",
        "notes": "请下午来",
        "consent": True,
        **fields,
    }


def new_poll(base: str, options: list, **fields) -> str:
    slug = unique("poll")
    with producer(base) as http:
        r = http.post("/api/polls", json={"slug": slug, "title": "我最喜欢的书记", "options": options, **fields})
        assert r.status_code == 201, r.text
    return slug


def vote(base: str, slug: str, cookie: str, option, headers: dict | None = None) -> httpx.Response:
    body = {"options": option} if isinstance(option, list) else {"option": option}
    return httpx.post(f"{base}/api/polls/{slug}/vote", json=body, cookies={"lt_device": cookie}, headers=headers or {})


# -- the roster ---------------------------------------------------------------------------------


def test_the_roster_is_managed_by_producers_and_public_without_contact(server):
    base = server.url
    assert httpx.post(f"{base}/api/guests", json={"name": "x"}).status_code == 401
    gid = new_guest(base, "姜忠宝", contact=GUEST_CONTACT, topics=["外企党建"])
    with producer(base) as http:
        bad = http.post("/api/guests", json={"name": "", "sector": "bank"})
        assert bad.status_code == 400 and set(bad.json()["fields"]) == {"name", "sector"}
        assert http.post(f"/api/guests/{gid}", json={"bio": "外资企业党组织书记"}).status_code == 200
    roster = httpx.get(f"{base}/api/guests").json()
    me = next(g for g in roster if g["id"] == gid)
    assert {"id", "name", "title", "org", "sector", "episodes", "talks"} <= set(me)
    assert me["episodes"] == 0 and me["talks"] == 0 and "contact" not in me
    for path in ("/api/guests", f"/api/guests/{gid}", "/guests", f"/guests/{gid}"):
        r = httpx.get(base + path)
        assert r.status_code == 200 and "13900001111" not in r.text and "wwbang" not in r.text, path
    assert "外资企业党组织书记" in httpx.get(f"{base}/guests/{gid}").text
    assert httpx.get(f"{base}/guests/g999999").status_code == 404


def test_an_episode_side_takes_its_guest_from_the_roster(server):
    base = server.url
    gid = new_guest(base, "杨玭", org="张家港市公益组织联合会", title="会长")
    slug = unique("ep")
    sides = {"a": {"name": "红方", "guest_id": gid}, "b": {"name": "蓝方", "guest": "一次性嘉宾", "org": "某社区"}}
    with producer(base) as http:
        assert http.post("/api/shows", json={"slug": slug, "title": "T", "sides": sides}).status_code == 201
        bad = http.post("/api/shows", json={"slug": slug + "x", "title": "T",
                                            "sides": {"a": {"guest_id": "g99999"}, "b": {}}})  # fmt: skip
        assert bad.status_code == 400 and "sides.a.guest_id" in bad.json()["fields"]
        form = http.get("/shows/new").text
        assert 'name="a_guest_id"' in form and f'value="{gid}"' in form
    snap = httpx.get(f"{base}/api/shows/{slug}", cookies=host_cookies(base)).json()["show"]["sides"]  # a draft
    assert snap["a"]["guest"] == "杨玭" and snap["a"]["org"] == "张家港市公益组织联合会会长"
    assert snap["a"]["guest_id"] == gid and snap["b"]["guest"] == "一次性嘉宾"
    profile = httpx.get(f"{base}/api/guests/{gid}").json()
    assert [e["slug"] for e in profile["episodes"]] == [slug] and profile["totals"]["episodes"] == 1


def png(width: int, height: int, mode: str = "RGBA") -> bytes:
    img = Image.new(mode, (width, height), (200, 30, 40, 128) if mode == "RGBA" else (200, 30, 40))
    for x in range(0, width, 50):
        img.paste((255, 220, 0, 255) if mode == "RGBA" else (255, 220, 0), (x, 0, x + 10, height))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def upload(base: str, gid: str, data: bytes, name: str = "p.png", cookies: dict | None = None) -> httpx.Response:
    return httpx.post(f"{base}/api/guests/{gid}/photo", files={"photo": (name, data, "image/png")},
                      cookies=cookies if cookies is not None else host_cookies(base))  # fmt: skip


def test_a_photo_is_checked_re_encoded_and_kept_by_the_store(fresh_server):
    srv = fresh_server(PHOTO_MAX_BYTES="300000", PHOTO_PX="320")
    gid = new_guest(srv.url)
    assert upload(srv.url, gid, png(100, 100), cookies={}).status_code == 401
    not_image = upload(srv.url, gid, b"GIF89a but not really a picture" * 10)
    assert not_image.status_code == 400 and "photo" in not_image.json()["fields"]
    bmp = io.BytesIO()
    Image.new("RGB", (60, 60), (1, 2, 3)).save(bmp, "BMP")
    assert upload(srv.url, gid, bmp.getvalue(), "p.bmp").status_code == 400  # not a photo format
    assert upload(srv.url, gid, b"\x89PNG" + b"\0" * 330_000).status_code == 413  # past PHOTO_MAX_BYTES
    assert upload(srv.url, gid, b"\0" * 2_000_000).status_code == 413  # not even read in full
    original = png(1600, 1200)
    ok = upload(srv.url, gid, original)
    assert ok.status_code == 200, ok.text
    url = ok.json()["photo"]
    got = httpx.get(srv.url + url)
    assert got.headers["content-type"] == "image/jpeg" and "immutable" in got.headers["cache-control"]
    img = Image.open(io.BytesIO(got.content))
    assert img.format == "JPEG" and max(img.size) == 320 and img.size == (320, 240) and got.content != original
    again = httpx.get(srv.url + url, headers={"If-None-Match": got.headers["etag"]})
    assert again.status_code == 304
    assert "immutable" not in httpx.get(f"{srv.url}/guests/{gid}/photo?v=old").headers["cache-control"]
    assert url in httpx.get(f"{srv.url}/guests/{gid}").text
    assert httpx.get(f"{srv.url}/guests/g999999/photo").status_code == 404


# -- polls -------------------------------------------------------------------------------------


def test_one_ballot_per_device_changeable_and_a_closed_poll_refuses(server):
    base = server.url
    g1, g2 = new_guest(base, "王伟"), new_guest(base, "杨玭")
    slug = new_poll(base, [{"id": g1, "label": ""}, {"id": g2, "label": ""}, {"id": "other", "label": "其他书记"}])
    view = httpx.get(f"{base}/api/polls/{slug}").json()
    assert view["status"] == "open" and [o["label"] for o in view["options"]] == ["王伟", "杨玭", "其他书记"]
    assert httpx.post(f"{base}/api/polls/{slug}/vote", json={"option": g1}).status_code == 401  # no device
    one, two = device_cookie(base, "demo"), device_cookie(base, "demo")
    assert vote(base, slug, one, g1).json()["options"] == [g1]
    assert vote(base, slug, two, g1).status_code == 200
    assert vote(base, slug, one, g2).status_code == 200  # changed: replaces the first
    assert vote(base, slug, one, [g1, g2]).status_code == 400  # one choice only
    assert vote(base, slug, one, "nope").status_code == 400
    counts = {o["id"]: o["votes"] for o in httpx.get(f"{base}/api/polls/{slug}").json()["options"]}
    assert counts == {g1: 1, g2: 1, "other": 0}
    assert httpx.get(f"{base}/api/polls/{slug}").json()["ballots"] == 2
    assert httpx.get(f"{base}/api/polls/{slug}", cookies={"lt_device": one}).json()["mine"] == [g2]
    assert httpx.post(f"{base}/api/polls/{slug}/close").status_code == 401
    with producer(base) as http:
        assert http.post(f"/api/polls/{slug}/close").json()["status"] == "closed"
        assert http.post(f"/api/polls/{slug}/close").status_code == 409
    late = vote(base, slug, one, g1)
    assert late.status_code == 409 and late.json()["error"] == "conflict" and "closed" in late.json()["message"]
    assert {o["id"]: o["votes"] for o in httpx.get(f"{base}/api/polls/{slug}").json()["options"]}[g2] == 1
    assert httpx.get(f"{base}/api/polls/nosuchpoll").status_code == 404


def test_a_poll_revealed_at_the_close_shows_its_split_nowhere_public_until_then(server):
    base = server.url
    g1 = new_guest(base, "郭本平")
    slug = new_poll(base, [{"id": g1, "label": ""}, {"id": "o2", "label": "姜忠宝"}], reveal="close", choices=2)
    for _ in range(3):
        assert vote(base, slug, device_cookie(base, "demo"), [g1, "o2"]).status_code == 200
    assert vote(base, slug, device_cookie(base, "demo"), g1).status_code == 200
    public = httpx.get(f"{base}/api/polls/{slug}").json()
    assert [o["votes"] for o in public["options"]] == [None, None] and public["ballots"] == 4
    for path in (f"/p/{slug}", f"/p/{slug}/results", f"/overlay/poll/{slug}", f"/guests/{g1}", f"/api/guests/{g1}"):
        text = httpx.get(base + path).text
        assert not re.search(r'"votes":\s*[0-9]', text) and 'data-votes="4"' not in text, path
    with producer(base) as http:
        hidden = http.get(f"/api/polls/{slug}/results").json()
        assert [o["votes"] for o in hidden["options"]] == [4, 3]
        assert http.get(f"/api/polls/{slug}/export?format=csv").text.count("\n") == 4
        http.post(f"/api/polls/{slug}/close")
    assert [o["votes"] for o in httpx.get(f"{base}/api/polls/{slug}").json()["options"]] == [4, 3]
    assert httpx.get(f"{base}/api/polls/{slug}/results").status_code == 401


def test_a_networks_ballots_past_its_budget_are_held_and_can_be_counted(fresh_server):
    srv = fresh_server(VOTES_PER_NETWORK="2", VOTE_BURST_MAX="100", VENUE_NETWORKS="10.77.0.0/16")
    slug = new_poll(srv.url, [{"id": "a1", "label": "甲"}, {"id": "b1", "label": "乙"}])
    office = xff("198.51.100.7")
    for _ in range(3):
        assert vote(srv.url, slug, device_cookie(srv.url, "demo", office), "a1", office).status_code == 200
    for i in range(3):  # a declared venue: no budget
        hall = xff(f"10.77.1.{i + 1}")
        assert vote(srv.url, slug, device_cookie(srv.url, "demo", hall), "b1", hall).status_code == 200
    view = httpx.get(f"{srv.url}/api/polls/{slug}").json()
    assert view["ballots"] == 5 and {o["id"]: o["votes"] for o in view["options"]} == {"a1": 2, "b1": 3}
    with producer(srv.url) as http:
        held = http.get(f"/api/polls/{slug}/results").json()
        assert held["held_ballots"] == 1 and held["held_reasons"]["network"] == 1
        assert "held" in http.get(f"/season/polls/{slug}").text
        assert http.post(f"/api/polls/{slug}/release", json={"reason": ""}).json() == {"released": 1}
    assert httpx.get(f"{srv.url}/api/polls/{slug}").json()["ballots"] == 6


# -- talk requests ------------------------------------------------------------------------------


def test_a_talk_request_names_each_bad_field(server):
    base = server.url
    bad = httpx.post(f"{base}/api/invitations", json=request_body(phone="0512-1234", audience="many", consent=False,
                                                                  unit=""))  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"] == "invalid"
    assert set(bad.json()["fields"]) == {"phone", "audience", "consent", "unit"}
    assert httpx.post(f"{base}/api/invitations", content=b"[1]").status_code == 400
    assert httpx.post(f"{base}/api/invitations", json=request_body(),
                      headers={"Origin": "https://evil.example"}).status_code == 403  # fmt: skip
    ok = httpx.post(f"{base}/api/invitations", json=request_body(guest_id="any"))
    assert ok.status_code == 201 and re.fullmatch(r"r\d+", ok.json()["id"])


def test_the_workflow_moves_step_by_step_keeps_who_and_when_and_refuses_the_impossible(server):
    base = server.url
    gid = new_guest(base, "郭本平")
    rid = httpx.post(f"{base}/api/invitations", json=request_body(guest_id=gid)).json()["id"]
    assert httpx.post(f"{base}/api/invitations/{rid}", json={"status": "contacted"}).status_code == 401
    with producer(base) as http:
        assert http.post(f"/api/invitations/{rid}", json={"status": "done", "attendance": 3}).status_code == 409
        assert http.post(f"/api/invitations/{rid}", json={"status": "scheduled"}).status_code == 409
        assert http.post(f"/api/invitations/{rid}", json={"status": "contacted", "by": "小李"}).status_code == 200
        missing = http.post(f"/api/invitations/{rid}", json={"status": "scheduled", "date": "2017-02-30"})
        assert missing.status_code == 400 and set(missing.json()["fields"]) == {"date", "place", "guest_id"}
        schedule = {
            "status": "scheduled",
            "date": "2999-08-31",
            "time": "14:00",
            "place": "园区会议室",
            "guest_id": gid,
            "by": "小李",
        }
        r = http.post(f"/api/invitations/{rid}", json=schedule)
        assert r.status_code == 200 and r.json()["schedule"]["place"] == "园区会议室"
        done = http.post(f"/api/invitations/{rid}", json={"status": "done", "attendance": 47, "by": "小王"}).json()
        assert http.post(f"/api/invitations/{rid}", json={"status": "declined", "reason": "x"}).status_code == 409
        assert [(h["to"], h["by"]) for h in done["history"]] == [("new", ""), ("contacted", "小李"),
                                                               ("scheduled", "小李"), ("done", "小王")]  # fmt: skip
        assert all(h["at"] > 0 for h in done["history"])
        assert done["phone"] == PHONE and done["contact"] == CONTACT  # producers see the contact
        stale = http.post(f"/api/invitations/{rid}", json={"status": "declined", "reason": "x", "version": 1})
        assert stale.status_code == 409
    assert httpx.get(f"{base}/api/guests/{gid}").json()["talks"]["done"] == 1
    assert next(g for g in httpx.get(f"{base}/api/guests").json() if g["id"] == gid)["talks"] == 1


def test_talk_requests_are_budgeted_per_network(fresh_server):
    srv = fresh_server(REQUESTS_PER_NETWORK="2")
    codes = [httpx.post(f"{srv.url}/api/invitations", json=request_body(), headers=xff("203.0.113.9")).status_code
             for _ in range(3)]  # fmt: skip
    assert codes == [201, 201, 429]
    assert httpx.post(f"{srv.url}/api/invitations", json=request_body(), headers=xff("203.0.114.9")).status_code == 201


def test_a_public_talk_fills_its_places_then_a_waiting_list(fresh_server):
    srv = fresh_server(SIGNUPS_PER_NETWORK="4")
    gid = new_guest(srv.url)
    with producer(srv.url) as http:
        r = http.post("/api/talks", json={"kind": "meet", "title": "书记来了", "guest_ids": [gid], "date": "2999-01-01",
                                          "place": "文化中心", "public": True, "capacity": 2})  # fmt: skip
        assert r.status_code == 201, r.text
        tid = r.json()["id"]

    def sign(phone: str, ip: str = "203.0.113.1") -> httpx.Response:
        return httpx.post(f"{srv.url}/api/talks/{tid}/signup", json={"name": "李", "phone": phone, "consent": True},
                          headers=xff(ip))  # fmt: skip

    assert [sign(p).json() for p in ("13900000001", "13900000002", "13900000003")] == [
        {"status": "registered", "place": 1},
        {"status": "registered", "place": 2},
        {"status": "waiting", "place": 1},
    ]
    again = sign("13900000001")
    assert again.status_code == 200 and again.json() == {"status": "registered", "place": 1}
    assert sign("13900000009").status_code == 429  # SIGNUPS_PER_NETWORK
    assert sign("12345", "203.0.114.1").status_code == 400
    page = httpx.get(f"{srv.url}/talks/{tid}").text
    assert 'data-registered="2"' in page and 'data-waiting="1"' in page and "13900000001" not in page
    public = next(t for t in httpx.get(f"{srv.url}/api/talks").json() if t["id"] == tid)
    assert public["registered"] == 2 and "1390000" not in str(public)
    with producer(srv.url) as http:
        rows = http.get(f"/api/talks/{tid}/signups").json()
        assert [r["phone"] for r in rows] == ["13900000001", "13900000002", "13900000003"]
    assert httpx.get(f"{srv.url}/api/talks/{tid}/signups").status_code == 401


async def test_contact_data_is_erased_by_the_sweep_and_the_counts_stay(fresh_server):
    srv = fresh_server(CONTACT_RETENTION_DAYS="0", SEASON_SWEEP_S="0.2")
    gid = new_guest(srv.url)
    rid = httpx.post(f"{srv.url}/api/invitations", json=request_body(guest_id=gid)).json()["id"]
    kept = httpx.post(f"{srv.url}/api/invitations", json=request_body()).json()["id"]
    with producer(srv.url) as http:
        for step in ({"status": "contacted"}, {"status": "scheduled", "date": "2017-08-31", "place": "园区",
                                                "guest_id": gid}, {"status": "done", "attendance": 47}):  # fmt: skip
            assert http.post(f"/api/invitations/{rid}", json=step).status_code == 200

        def erased() -> bool:
            return http.get(f"/api/invitations/{rid}").json()["erased"] > 0

        await wait_until(erased, timeout=10)
        inv = http.get(f"/api/invitations/{rid}").json()
        assert (inv["contact"], inv["phone"], inv["notes"]) == ("", "", "") and inv["outcome"]["attendance"] == 47
        assert http.get(f"/api/invitations/{kept}").json()["phone"] == PHONE  # not done: kept
        assert "已送党课 2 次" in http.get("/season").text  # the demo's talk and this one
    assert httpx.get(f"{srv.url}/api/guests/{gid}").json()["talks"]["done"] == 1
    assert PHONE not in "".join(srv.log) and CONTACT not in "".join(srv.log)


# -- no contact data in any public answer ------------------------------------------------------------


def public_paths(ids: dict[str, str]) -> list[str]:
    """Every GET route of the app that needs no sign-in, with its path parameters filled."""
    from server.web import api, pages, season

    out = []
    for route in [*pages.routes, *api.routes, *season.routes]:
        if "GET" not in (route.methods or ()):
            continue
        path = route.path
        for name in re.findall(r"{(\w+)}", path):
            path = path.replace("{%s}" % name, ids[name])
        out.append(path)
    return out


def test_contact_data_is_in_no_public_answer(server):
    base = server.url
    gid = new_guest(base, "王伟", contact=GUEST_CONTACT)
    slug = create_show(base)
    poll = new_poll(base, [{"id": gid, "label": ""}, {"id": "o2", "label": "乙"}])
    rid = httpx.post(f"{base}/api/invitations", json=request_body(guest_id=gid)).json()["id"]
    with producer(base) as http:
        http.post(f"/api/invitations/{rid}", json={"status": "contacted"})
        http.post(f"/api/invitations/{rid}", json={"status": "scheduled", "date": "2999-09-09", "place": "园区",
                                                   "guest_id": gid, "public": True, "capacity": 5})  # fmt: skip
        assert http.get("/api/invitations").text.count(PHONE) >= 1  # producers see it
    httpx.post(f"{base}/api/talks/{rid}/signup", json={"name": "报名人丙丁", "phone": "13700007777", "consent": True})
    secrets = (PHONE, CONTACT, "请下午来", "13900001111", "wwbang", "报名人丙丁", "13700007777")
    ids = {"guest": gid, "poll": poll, "show": slug, "id": rid}
    paths = [*public_paths(ids), f"/invite/done?id={rid}", f"/overlay/{slug}?widgets=pk,poll&poll={poll}",
             "/api/invitations", f"/api/invitations/{rid}", f"/api/talks/{rid}/signups"]  # fmt: skip
    assert {"/guests", f"/guests/{gid}", "/api/guests", f"/p/{poll}", "/invite", f"/talks/{rid}", "/api/talks",
            "/api/season/counts", f"/api/season/after/{slug}", "/metrics"} <= set(paths)  # fmt: skip
    with httpx.Client(base_url=base) as http:
        for path in paths:
            r = http.get(path)
            assert r.status_code < 500, (path, r.status_code)
            leaked = [s for s in secrets if s in r.text]
            assert not leaked, (path, leaked)
    assert not [s for s in secrets if s in "".join(server.log)], "contact data in the log"


# -- Redis mode: two processes, one season -------------------------------------------------------


@pytest.mark.redis
async def test_two_processes_share_the_season_through_redis(fresh_server, redis_server):
    env = {
        "REDIS_URL": redis_server.url,
        "REDIS_PREFIX": f"season{time.monotonic_ns()}",
        "VOTES_PER_NETWORK": "1",
        "CONTACT_RETENTION_DAYS": "0",
        "SEASON_SWEEP_S": "0.2",
    }
    a, b = fresh_server(**env), fresh_server(**env)
    gid = new_guest(a.url, "王伟", contact=GUEST_CONTACT)
    assert upload(a.url, gid, png(600, 400)).status_code == 200
    profile = httpx.get(f"{b.url}/api/guests/{gid}").json()["guest"]  # the other process
    assert profile["name"] == "王伟" and "contact" not in profile
    photo = httpx.get(b.url + profile["photo"])
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    slug = new_poll(a.url, [{"id": gid, "label": ""}, {"id": "o2", "label": "乙"}])
    office = xff("198.51.100.20")
    one, two = device_cookie(a.url, "demo", office), device_cookie(b.url, "demo", office)
    assert vote(b.url, slug, one, gid, office).status_code == 200
    assert vote(a.url, slug, one, "o2", office).status_code == 200  # one ballot, changed on the other process
    assert vote(b.url, slug, two, gid, office).json()["counted"] is False  # past the network's budget: held

    def counts() -> dict:
        return {o["id"]: o["votes"] for o in httpx.get(f"{a.url}/api/polls/{slug}").json()["options"]}

    await wait_until(lambda: counts() == {gid: 0, "o2": 1}, timeout=5)  # results are reused for a second
    with producer(b.url) as http:
        assert http.get(f"/api/polls/{slug}/results").json()["held_ballots"] == 1
    rid = httpx.post(f"{b.url}/api/invitations", json=request_body(guest_id=gid)).json()["id"]
    with producer(a.url) as http:
        declined = http.post(f"/api/invitations/{rid}", json={"status": "declined", "reason": "时间不合适"})
        assert declined.status_code == 200
        assert http.post(f"/api/invitations/{rid}", json={"status": "contacted"}).status_code == 409

        def erased() -> bool:
            return http.get(f"/api/invitations/{rid}").json()["phone"] == ""

        await wait_until(erased, timeout=10)
    for srv in (a, b):
        assert PHONE not in "".join(srv.log) and "13900001111" not in "".join(srv.log)
