"""Resume: a socket that comes back with its last seq and the stream's epoch gets
`resumed` and only the frames of its own stream it missed, or a snapshot when the
process no longer has them all (docs/protocol.md, Resume)."""

from conftest import Client, Clients, create_show, device_cookie

DISCRETE = ("question", "round", "show", "points")


async def phone(srv, slug: str, cookie: str, query: str = "") -> Client:
    c = await Client.connect(srv.ws_url, "audience", slug, f"lt_device={cookie}", query=query)
    await c.wait_for(lambda f: f["type"] in ("snapshot", "resumed"))
    await c.send({"type": "hello"})
    return c


async def test_a_phone_resumes_with_only_the_public_frames_it_missed(server, clients):
    slug = create_show(server.url)
    cookie = device_cookie(server.url, slug)
    console = await clients.console(slug)
    first = await phone(server, slug, cookie)
    snap = first.frames[0]
    epoch, seq = snap["epoch"], snap["seq"]
    assert isinstance(epoch, str) and epoch
    assert (await console.request({"type": "points.set", "side": "a", "points": 1}))["type"] == "ack"
    seq = (await first.wait_for(lambda f: f["type"] == "points"))["seq"]
    asked = (await first.request({"type": "ask", "text": "我自己的问题"}))["question"]
    await first.close()

    # while it is away: two public changes and console-only ones (a pending question, a ban)
    other = await clients.audience(slug)
    pending = (await other.request({"type": "ask", "text": "别人的待审问题"}))["question"]
    assert (await console.request({"type": "points.set", "side": "b", "points": 2}))["type"] == "ack"
    assert (await console.request({"type": "round.start", "topic": "回来了", "duration_s": 60}))["type"] == "ack"
    found = await console.wait_for(lambda f: f["type"] == "question" and f["question"]["id"] == pending)
    dhash = found["question"]["device"]
    assert (await console.request({"type": "device.ban", "device": dhash}))["type"] == "ack"
    await other.wait_type("round")

    back = await phone(server, slug, cookie, query=f"since={seq}&epoch={epoch}")
    resumed = back.frames[0]
    assert resumed["type"] == "resumed" and resumed["since"] == seq and resumed["epoch"] == epoch
    assert resumed["missed"] == resumed["seq"] - seq >= 3  # points, round, the floor's reset
    assert resumed["tally"]["points"] == {"a": 1, "b": 2}
    await back.wait_for(lambda f: f.get("seq") == resumed["seq"] and f["type"] in DISCRETE)
    stream = [f for f in back.frames if f["type"] in DISCRETE]
    # exactly what a phone that stayed saw, in order, and nothing else
    await other.wait_for(lambda f: f.get("seq") == resumed["seq"] and f["type"] in DISCRETE)
    assert stream == [f for f in other.frames if f["type"] in DISCRETE]
    assert [f["seq"] for f in stream] == list(range(seq + 1, resumed["seq"] + 1))
    assert stream[0]["type"] == "points" and stream[1]["round"]["topic"] == "回来了"
    text = str(back.frames)
    assert pending not in text and "别人的待审问题" not in text and "banned" not in str(stream)
    mine = await back.wait_type("mine")  # its own question, still pending, outside the stream
    assert mine["question"]["id"] == asked
    assert not any(f["type"] == "snapshot" for f in back.frames)
    # then it follows live
    assert (await console.request({"type": "points.set", "side": "a", "points": 5}))["type"] == "ack"
    live = await back.wait_for(lambda f: f["type"] == "points" and f["points"]["a"] == 5)
    assert live["seq"] == resumed["seq"] + 1
    await back.close()


async def test_a_console_resumes_with_the_console_stream(server, clients):
    slug = create_show(server.url)
    console = await clients.console(slug)
    snap = console.frames[0]
    await console.close()
    audience = await clients.audience(slug)
    qid = (await audience.request({"type": "ask", "text": "待审"}))["question"]
    back = await Client.connect(
        server.ws_url,
        "console",
        slug,
        console.ws.request.headers["Cookie"],
        query=f"since={snap['seq']}&epoch={snap['epoch']}",
    )
    clients.made.append(back)
    first = await back.wait_for(lambda f: f["type"] in ("snapshot", "resumed"))
    assert first["type"] == "resumed" and first["missed"] == 1
    pending = await back.wait_type("question")
    assert pending["question"]["id"] == qid and pending["seq"] == snap["seq"] + 1


async def test_a_resume_it_cannot_serve_gets_a_snapshot(fresh_server):
    """Wrong epoch, a seq ahead of the show, frames no longer held (RESUME_FRAMES=2), and
    a process that has just restarted and has not seen what the phone missed."""
    srv = fresh_server(RESUME_FRAMES="2")
    slug = create_show(srv.url)
    made = Clients(srv)
    try:
        cookie = device_cookie(srv.url, slug)
        console = await made.console(slug)
        snap = (await phone(srv, slug, cookie)).frames[0]
        epoch, seq = snap["epoch"], snap["seq"]
        for n in range(1, 4):  # three public frames: the ring keeps the last two
            assert (await console.request({"type": "points.set", "side": "a", "points": n}))["type"] == "ack"

        async def first(query: str) -> dict:
            c = await phone(srv, slug, cookie, query)
            await c.close()
            return c.frames[0]

        assert (await first(f"since={seq}&epoch={epoch}"))["type"] == "snapshot"  # too old
        assert (await first(f"since={seq + 1}&epoch={epoch}"))["type"] == "resumed"  # the last two: held
        assert (await first(f"since={seq + 3}&epoch=other"))["type"] == "snapshot"  # wrong epoch
        assert (await first(f"since={seq + 9}&epoch={epoch}"))["type"] == "snapshot"  # ahead of the show
        assert (await first(f"since=x&epoch={epoch}"))["type"] == "snapshot"  # not a seq
        assert (await first(f"since={seq + 3}&epoch={epoch}"))["type"] == "resumed"  # up to date

        await made.close()
        made = Clients(srv)
        srv.stop()
        srv.start()  # a restart: the new process holds no frames, only the show as stored
        again = await first(f"since={seq + 3}&epoch={epoch}")
        assert again["type"] == "resumed" and again["missed"] == 0  # nothing missed: no snapshot
        assert (await first(f"since={seq + 2}&epoch={epoch}"))["type"] == "snapshot"
    finally:
        await made.close()
