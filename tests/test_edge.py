"""The edge against a hostile network (issue 11): slow and piled-up connections,
sign-in guessing, sessions that can be ended, draft shows, and origins checked
against the server's own address rather than the `Host` a client sends."""

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from conftest import TOKEN, Client, Server, create_show, device_cookie, host_cookies, overlay_key, wait_until


def test_the_made_host_token_is_printed_only_when_first_made(fresh_server):
    """A host token the server makes itself is printed once, when it is made; later
    starts say where it is kept and never print it (service logs keep every start)."""
    first = fresh_server(HOST_TOKEN="")
    token = (Path(first.data_dir) / "host_token").read_text().strip()
    assert token and token in "".join(first.log)
    first.stop()
    again = Server(data_dir=first.data_dir, HOST_TOKEN="").start()
    try:
        log = "".join(again.log)
        assert "host_token" in log and "not shown" in log
        assert token not in log
    finally:
        again.stop()
        if again.proc and again.proc.stdout:
            again.proc.stdout.close()


# -- connections: a header deadline and a cap per address -------------------------------------------

ATTACKER, HONEST = "127.0.0.2", "127.0.0.3"  # loopback is a /8: other source addresses, same machine


async def _partial(port: int, source: str, head: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    if head:
        writer.write(head)
    return reader, writer


async def _closed_after(reader: asyncio.StreamReader, opened: float, timeout: float) -> float:
    """Seconds from `opened` until the server closed the connection."""
    try:
        while await asyncio.wait_for(reader.read(4096), timeout):
            pass
    except ConnectionError:
        pass
    return time.monotonic() - opened


async def test_slowloris_is_timed_out_and_capped_per_address_while_honest_clients_are_served(fresh_server):
    """300 partial requests from one address (a real slowloris client on loopback): past
    CONNECTIONS_PER_IP they are closed at once, the rest when HEADER_TIMEOUT_S runs out
    (also one that trickles a byte at a time, and one that sends nothing); meanwhile a
    client on another address gets pages and sockets; afterwards the address's count is
    back to zero (connections are given back when they close)."""
    timeout_s, cap, total = 4.0, 100, 300
    srv = fresh_server(HEADER_TIMEOUT_S=str(timeout_s), CONNECTIONS_PER_IP=str(cap))
    slug = create_show(srv.url)
    cookie = device_cookie(srv.url, slug)
    heads = [b"GET /s/demo HTTP/1.1\r\nHost: x\r\nUser-Agent: slow\r\n"] * (total - 2) + [b"", b"G"]
    opened = time.monotonic()
    conns = await asyncio.gather(*(_partial(srv.port, ATTACKER, h) for h in heads))
    closes = [asyncio.create_task(_closed_after(r, opened, timeout_s + 10)) for r, _ in conns]

    async def trickle(writer: asyncio.StreamWriter) -> None:
        for byte in b"ET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
            if writer.is_closing():
                return
            writer.write(bytes([byte]))
            await asyncio.sleep(0.2)  # models the attacker's pace, not synchronisation

    trickler = asyncio.create_task(trickle(conns[-1][1]))
    # the honest client, on another address, during the attack
    local = httpx.AsyncHTTPTransport(local_address=HONEST)
    async with httpx.AsyncClient(base_url=srv.url, transport=local, cookies={"lt_device": cookie}) as http:
        pages = [await http.get(f"/s/{slug}") for _ in range(5)]
    assert [r.status_code for r in pages] == [200] * 5
    phone = await Client.connect(srv.ws_url, "audience", slug, f"lt_device={cookie}", local_addr=(HONEST, 0))
    assert (await phone.snapshot())["type"] == "snapshot"
    await phone.send({"type": "hello"})
    assert (await phone.request({"type": "like", "side": "a", "count": 1}))["type"] == "ack"
    during = time.monotonic() - opened
    assert during < timeout_s, f"the honest client took {during:.1f} s: not during the attack"

    seconds = await asyncio.gather(*closes)
    trickler.cancel()
    refused = [s for s in seconds if s < timeout_s * 0.8]
    timed_out = [s for s in seconds if s >= timeout_s * 0.8]
    assert len(refused) == total - cap, sorted(seconds)
    assert len(timed_out) == cap
    assert max(timed_out) < timeout_s + 3, max(timed_out)
    for _, writer in conns:
        writer.close()
    assert phone.close_code is None  # the honest socket is untouched (it sent its headers in time)
    await phone.close()

    # every connection was given back: the same address gets its full allowance again
    again = await asyncio.gather(*(_partial(srv.port, ATTACKER, b"GET / HTTP/1.1\r\n") for _ in range(cap)))
    probe = time.monotonic()
    seconds = await asyncio.gather(*(_closed_after(r, probe, timeout_s + 10) for r, _ in again))
    assert min(seconds) >= timeout_s * 0.8, sorted(seconds)[:5]
    for _, writer in again:
        writer.close()


async def test_sockets_count_toward_the_cap_per_address_until_they_close(fresh_server):
    """A WebSocket holds its address's connection slot after the upgrade and gives it back
    when it closes: with CONNECTIONS_PER_IP=3 and three sockets open, a page load from the
    same address is refused at once; after one socket closes it is served."""
    srv = fresh_server(CONNECTIONS_PER_IP="3")
    slug = create_show(srv.url)
    key = overlay_key(srv.url, slug)
    query, source = f"key={key}", (ATTACKER, 0)
    screens = [await Client.connect(srv.ws_url, "overlay", slug, query=query, local_addr=source) for _ in range(3)]
    for s in screens:
        await s.snapshot()
    local = httpx.AsyncHTTPTransport(local_address=ATTACKER)
    async with httpx.AsyncClient(base_url=srv.url, transport=local) as http:
        with pytest.raises(httpx.TransportError):
            await http.get(f"/overlay/{slug}")
    await screens[0].close()
    async with httpx.AsyncClient(base_url=srv.url, transport=httpx.AsyncHTTPTransport(local_address=ATTACKER)) as http:
        r = await wait_until(lambda: _get_ok(http, f"/overlay/{slug}"), timeout=5)
    assert r
    for s in screens[1:]:
        assert s.close_code is None
        await s.close()


async def _get_ok(http: httpx.AsyncClient, path: str) -> bool:
    try:
        return (await http.get(path)).status_code == 200
    except httpx.TransportError:
        return False


# -- sign-in and sessions ------------------------------------------------------------------------------


def _login(base: str, token: str, ip: str) -> httpx.Response:
    """A sign-in from `ip` (posed with X-Forwarded-For, trusted from loopback)."""
    with httpx.Client(base_url=base, headers={"X-Forwarded-For": ip}) as http:
        return http.post("/login", data={"token": token, "next": "/shows"}, follow_redirects=False)


def test_sign_in_is_throttled_per_address_and_in_total(fresh_server):
    """A few wrong tokens from one address, then 429 with Retry-After for the rest of the
    minute (even the right token is not compared); other addresses sign in. Wrong tokens
    spread over many addresses pause sign-in for everyone; a host already signed in
    keeps working."""
    srv = fresh_server(LOGIN_FAILURES_PER_IP="3", LOGIN_FAILURES_PER_MINUTE="8")
    signed = host_cookies(srv.url)
    for _ in range(3):
        r = _login(srv.url, "guess", "203.0.113.9")
        assert r.status_code == 303 and "error=1" in r.headers["location"]
    r = _login(srv.url, TOKEN, "203.0.113.9")
    assert r.status_code == 429, r.status_code
    assert 0 < int(r.headers["retry-after"]) <= 60
    assert "lt_session" not in r.cookies
    assert "login-wait" in r.text  # the form again, saying how long to wait
    r = _login(srv.url, TOKEN, "203.0.113.10")
    assert r.status_code == 303 and "lt_session" in r.cookies  # another address is not held up
    for i in range(5):  # 3 + 5 = 8 wrong tokens, each address below its own limit
        assert _login(srv.url, "guess", f"198.51.100.{i + 1}").status_code == 303
    r = _login(srv.url, TOKEN, "198.51.100.99")
    assert r.status_code == 429 and "lt_session" not in r.cookies
    assert httpx.get(f"{srv.url}/shows", cookies=signed).status_code == 200


async def test_sign_out_ends_the_session_on_the_server_and_closes_its_console(fresh_server):
    """Signing out revokes that session: its cookie (kept by someone) no longer opens a
    page, an API or a console, and its open console is closed with 4401; the other
    session is untouched. After a restart the revoked cookie is still refused."""
    srv = fresh_server()
    slug = create_show(srv.url)
    a, b = host_cookies(srv.url), host_cookies(srv.url)
    on_a = await Client.connect(srv.ws_url, "console", slug, f"lt_session={a['lt_session']}")
    on_b = await Client.connect(srv.ws_url, "console", slug, f"lt_session={b['lt_session']}")
    await on_a.snapshot()
    await on_b.snapshot()
    r = httpx.post(f"{srv.url}/logout", cookies=a)
    assert r.status_code == 303
    assert await on_a.closed() == 4401
    assert httpx.get(f"{srv.url}/api/shows/{slug}/overlay-url", cookies=a).status_code == 401
    assert httpx.get(f"{srv.url}/shows", cookies=a).status_code == 303  # to the sign-in form
    again = await Client.connect(srv.ws_url, "console", slug, f"lt_session={a['lt_session']}")
    assert await again.closed() == 4401
    assert on_b.close_code is None
    assert (await on_b.request({"type": "points.set", "side": "a", "points": 1}))["type"] == "ack"
    assert httpx.get(f"{srv.url}/api/shows/{slug}/overlay-url", cookies=b).status_code == 200
    await on_b.close()
    srv.stop()
    srv.start()
    assert httpx.get(f"{srv.url}/api/shows/{slug}/overlay-url", cookies=a).status_code == 401
    assert httpx.get(f"{srv.url}/api/shows/{slug}/overlay-url", cookies=b).status_code == 200


async def test_sign_out_everywhere_ends_every_host_session(fresh_server):
    """ "Sign out everywhere" (a button on the console and the producer pages) ends every
    host session: each open console is closed with 4401 and no old cookie works; signing
    in again works."""
    srv = fresh_server()
    slug = create_show(srv.url)
    sessions = [host_cookies(srv.url) for _ in range(3)]
    page = httpx.get(f"{srv.url}/console/{slug}", cookies=sessions[0]).text
    assert 'action="/logout/all"' in page
    assert 'action="/logout/all"' in httpx.get(f"{srv.url}/shows", cookies=sessions[0]).text
    consoles = [
        await Client.connect(srv.ws_url, "console", slug, f"lt_session={c['lt_session']}") for c in sessions[:2]
    ]
    for c in consoles:
        await c.snapshot()
    assert httpx.post(f"{srv.url}/logout/all").status_code == 401  # signed-in hosts only
    assert httpx.post(f"{srv.url}/logout/all", cookies=sessions[2]).status_code == 303
    for c in consoles:
        assert await c.closed() == 4401
    for c in sessions:
        assert httpx.get(f"{srv.url}/api/shows/{slug}/overlay-url", cookies=c).status_code == 401
    fresh = host_cookies(srv.url)
    assert httpx.get(f"{srv.url}/api/shows/{slug}/overlay-url", cookies=fresh).status_code == 200
    console = await Client.connect(srv.ws_url, "console", slug, f"lt_session={fresh['lt_session']}")
    await console.snapshot()
    await console.close()


@pytest.mark.redis
async def test_a_session_ended_on_one_process_ends_on_every_process(fresh_server, redis_server):
    """Redis mode: signing out on one process closes the session's console on the other
    (within SESSION_CHECK_S) and the cookie is refused there too."""
    env = {"REDIS_URL": redis_server.url, "REDIS_PREFIX": f"sess{time.monotonic_ns()}", "SESSION_CHECK_S": "0.5"}
    one, two = fresh_server(**env), fresh_server(**env)
    slug = create_show(one.url)
    a = host_cookies(one.url)
    console = await Client.connect(two.ws_url, "console", slug, f"lt_session={a['lt_session']}")
    await console.snapshot()
    assert httpx.post(f"{one.url}/logout", cookies=a).status_code == 303
    assert await console.closed(timeout=5) == 4401
    assert httpx.get(f"{two.url}/api/shows/{slug}/overlay-url", cookies=a).status_code == 401
    b = host_cookies(two.url)
    assert httpx.post(f"{two.url}/logout/all", cookies=b).status_code == 303
    assert await wait_until(
        lambda: httpx.get(f"{one.url}/api/shows/{slug}/overlay-url", cookies=b).status_code == 401, timeout=5
    )


# -- draft shows --------------------------------------------------------------------------------------


async def test_a_draft_answers_exactly_as_an_unknown_slug_to_the_public(server):
    """`POST /api/shows` with "status": "draft" makes a show only hosts see: its pages,
    QR code, snapshot, season API and sockets answer the public exactly as for a slug that
    does not exist (same status, same body); a host sees it, and so does an overlay on its
    keyed address; once the show goes live it is public."""
    base = server.url
    host = host_cookies(base)
    draft, unknown = f"draft-{time.monotonic_ns()}", f"nothing-{time.monotonic_ns()}"
    sides = {"a": {"name": "红方", "guest": "秘密嘉宾"}, "b": {"name": "蓝方"}}
    body = {"slug": draft, "title": "未公开的一期", "status": "draft", "sides": sides, "plan": [{"topic": "保密议题"}]}
    assert httpx.post(f"{base}/api/shows", json=body, cookies=host).status_code == 201
    live = create_show(base)
    phone = device_cookie(base, live)
    paths = ["/s/{}", "/overlay/{}", "/overlay/{}?key=wrong", "/qr/{}.svg", "/api/shows/{}", "/api/season/after/{}"]
    with httpx.Client(base_url=base, cookies={"lt_device": phone}) as http:
        for path in paths:
            a, b = http.get(path.format(draft)), http.get(path.format(unknown))
            assert (a.status_code, a.headers.get("content-type"), a.content) == (
                b.status_code,
                b.headers.get("content-type"),
                b.content,
            ), path
            assert a.status_code == 404 and "秘密嘉宾" not in a.text, path
    for slug in (draft, unknown):
        for role, cookie, query in (
            ("audience", f"lt_device={phone}", ""),
            ("overlay", "", ""),
            ("overlay", "", "key=wrong"),
        ):
            c = await Client.connect(server.ws_url, role, slug, cookie, query=query)
            assert await c.closed() == 4404 and c.frames == [], (slug, role, query)
    # a host sees it; so does OBS on the keyed address
    with httpx.Client(base_url=base, cookies=host) as http:
        assert http.get(f"/s/{draft}").status_code == 200
        assert http.get(f"/api/shows/{draft}").json()["show"]["sides"]["a"]["guest"] == "秘密嘉宾"
        key = http.get(f"/api/shows/{draft}/overlay-url").json()["key"]
    assert httpx.get(f"{base}/overlay/{draft}?key={key}").status_code == 200
    assert httpx.get(f"{base}/qr/{draft}.svg?key={key}").status_code == 200
    screen = await Client.connect(server.ws_url, "overlay", draft, query=f"key={key}")
    assert (await screen.snapshot())["show"]["status"] == "draft"
    console = await Client.connect(server.ws_url, "console", draft, f"lt_session={host['lt_session']}")
    await console.snapshot()
    await console.send({"type": "hello"})
    # live: public
    assert (await console.request({"type": "round.start", "topic": "", "duration_s": 0}))["type"] == "ack"
    assert httpx.get(f"{base}/api/shows/{draft}").status_code == 200
    viewer = await Client.connect(server.ws_url, "audience", draft, f"lt_device={phone}")
    await viewer.snapshot()
    for c in (screen, console, viewer):
        await c.close()


# -- origins --------------------------------------------------------------------------------------------


async def test_the_origin_is_checked_against_our_addresses_never_the_host_header(fresh_server):
    """DNS rebinding: a page on rebind.evil.example, resolved to the server, sends
    `Host: rebind.evil.example` with a matching Origin. Writes get 403 and sockets are
    closed 4403 before any snapshot. Ours: PUBLIC_URL, the address the connection reached,
    ALLOWED_HOSTS (a name: any port; name:port: that one), ALLOWED_ORIGINS."""
    srv = fresh_server(PUBLIC_URL="https://leitai.example/", ALLOWED_HOSTS="studio.example,cam.example:8443")
    slug = create_show(srv.url)
    cookies = host_cookies(srv.url)
    body = {"slug": f"rebind-{time.monotonic_ns()}", "title": "t", "sides": {"a": {}, "b": {}}}
    port = srv.port
    for host, origin in (
        ("rebind.evil.example", "http://rebind.evil.example"),
        (f"rebind.evil.example:{port}", f"http://rebind.evil.example:{port}"),
    ):
        headers = {"Host": host, "Origin": origin}
        r = httpx.post(f"{srv.url}/api/shows", json=body, cookies=cookies, headers=headers)
        assert r.status_code == 403, (origin, r.status_code)
        r = httpx.post(f"{srv.url}/login", data={"token": TOKEN}, headers=headers)
        assert r.status_code == 403 and "lt_session" not in r.cookies
        for role, cookie in (("overlay", ""), ("console", f"lt_session={cookies['lt_session']}")):
            c = await Client.connect(srv.ws_url, role, slug, cookie, headers=headers)
            assert await c.closed() == 4403 and c.frames == [], (origin, role)

    async def opens(origin: str, host: str | None = None) -> bool:
        c = await Client.connect(srv.ws_url, "overlay", slug, origin=origin, headers={"Host": host} if host else {})
        try:
            await c.snapshot()
            return True
        except ConnectionError:
            assert c.close_code == 4403
            return False
        finally:
            await c.close()

    # ours, whatever Host the request carries
    assert await opens("https://leitai.example", host="rebind.evil.example")
    assert await opens(srv.url, host="rebind.evil.example")  # the address the connection reached
    assert await opens(f"http://localhost:{port}")  # that address is loopback
    assert await opens("https://studio.example:4000") and await opens("http://studio.example")
    assert await opens("https://cam.example:8443")
    for bad in (
        "https://cam.example",
        "https://leitai.example.evil.com",
        "http://leitai.example",
        f"http://127.0.0.1:{port + 1}",
        f"https://127.0.0.1:{port}",
        "null",
    ):
        assert not await opens(bad), bad
    r = httpx.post(f"{srv.url}/api/shows", json=body, cookies=cookies, headers={"Origin": "https://leitai.example"})
    assert r.status_code == 201
