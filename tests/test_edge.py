"""The edge against a hostile network (issue 11): slow and piled-up connections,
sign-in guessing, sessions that can be ended, draft shows, and origins checked
against the server's own address rather than the `Host` a client sends."""

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from conftest import Client, Server, create_show, device_cookie, overlay_key, wait_until


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
    timeout_s, cap, total = 3.0, 100, 300
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
