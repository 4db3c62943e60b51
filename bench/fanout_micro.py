"""The user-space cost of one delivery, without the kernel: Leitai's fan-out
(`server/hub.py` Room.send_group -> Conn.send -> TransportWriter.write, the
frame built once) against `websockets.broadcast()` (a frame built per
connection), and a bare loop of `transport.write` as the floor.

    python -m bench.fanout_micro [--conns 10000] [--rounds 50]

The transports are stand-ins whose methods are C built-ins (`write` is a
`deque(maxlen=0).append`, which drops the bytes), so what is timed is the Python
work per recipient; the `write` system call that a real transport makes (most of
a delivery's cost on loopback: docs/performance.md) is left out on purpose.
CPU time (`time.process_time`), best of `--repeat` runs.
"""

import argparse
import asyncio
import time
from collections import deque

import orjson


class FakeTransport:
    """What the fan-out paths call on a uvloop TCPTransport, as C built-ins."""

    __slots__ = ("get_write_buffer_size", "is_closing", "write")

    def __init__(self) -> None:
        self.write = deque(maxlen=0).append
        self.is_closing = bool  # bool() -> False
        self.get_write_buffer_size = int  # int() -> 0

    def get_extra_info(self, name: str, default=None):
        return default


class FakeProto:
    __slots__ = ("close_sent", "transport")

    def __init__(self) -> None:
        self.transport = FakeTransport()
        self.close_sent = False


def leitai_conns(n: int) -> tuple:
    from server.hub import Conn, Room
    from server.transport import TransportWriter

    room = Room(1)
    for i in range(n):
        conn = Conn(TransportWriter(None, FakeProto(), 512 * 1024, 0), "audience", "demo", dhash=f"d{i}")
        room.add(conn)
    return room, room.conns["audience"]


def websockets_conns(n: int) -> list:
    from websockets.asyncio.server import ServerConnection
    from websockets.protocol import OPEN
    from websockets.server import ServerProtocol

    out = []
    for _ in range(n):
        c = ServerConnection(ServerProtocol(), server=None, ping_interval=None)  # type: ignore[arg-type]
        c.protocol.state = OPEN
        c.transport = FakeTransport()  # type: ignore[assignment]
        out.append(c)
    return out


def best(fn, rounds: int, repeat: int) -> float:
    """CPU seconds per call, best of `repeat` runs of `rounds` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(rounds):
            fn()
        times.append((time.process_time() - t0) / rounds)
    return min(times)


async def main_async(a: argparse.Namespace) -> None:
    from websockets.asyncio.server import broadcast

    from server.transport import ws_text_frame

    n = a.conns
    body = orjson.dumps(
        {
            "seq": 123456,
            "type": "tally",
            "likes": {"a": 1234567, "b": 1034567},
            "votes": {"a": 1234, "b": 1200},
            "points": {"a": 0, "b": 0},
            "viewers": 15000,
            "rounds_won": {"a": 0, "b": 0},
            "peak_viewers": 15000,
            "unique_viewers": 15000,
            "overlays": 1,
        }
    )
    room, lconns = leitai_conns(n)
    wconns = websockets_conns(n)
    floor_transports = [FakeTransport() for _ in range(n)]
    wire = ws_text_frame(body)

    def floor() -> None:
        for t in floor_transports:
            t.write(wire)

    def leitai() -> None:
        room.send_group(lconns, body)

    def ws() -> None:
        broadcast(wconns, body, text=True)

    results = {}
    for name, fn in (("floor: transport.write per socket", floor), ("Leitai send_group", leitai), ("broadcast()", ws)):
        results[name] = best(fn, a.rounds, a.repeat) / n * 1e6
    print(f"{n} connections, a {len(body)}-byte tally, µs of CPU per recipient (best of {a.repeat}):")
    for name, us in results.items():
        print(f"  {us:6.3f}  {name}")
    lt, bc = results["Leitai send_group"], results["broadcast()"]
    print(f"  broadcast() ÷ Leitai: {bc / lt:.2f}× (user space only, no system call)")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.fanout_micro", description=__doc__.split("\n\n")[0])
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    asyncio.run(main_async(a))


if __name__ == "__main__":
    main()
