"""How each server under test is spoken to: paths and frames.

`leitai` and `websockets` (the raw baseline) speak Leitai's JSON protocol
(docs/protocol.md). `socketio` speaks Socket.IO v5 over the Engine.IO v4
WebSocket transport (`/socket.io/?EIO=4&transport=websocket`), with the same
events: `like`, `vote`, `ask`, `round.start` from clients, `snapshot` and
`tally` from the server.
"""

import orjson

SIO_OPEN = b"0"  # engine.io open packet (server -> client), then we send "40"
SIO_PING = b"2"
SIO_PONG = b"3"
SIO_CONNECT = b"40"
SIO_EVENT = b"42"


class Dialect:
    name = "json"
    sio = False

    def path(self, role: str, slug: str) -> str:
        return f"/ws/{role}/{slug}"

    @staticmethod
    def encode(frame: dict, ack: int | None = None) -> bytes:
        return orjson.dumps(frame)

    def hello(self) -> bytes:
        """Sent by phones and consoles right after the snapshot: Leitai closes (1008) a
        phone or console socket that says nothing valid within FIRST_MESSAGE_TIMEOUT_S."""
        return self.encode({"type": "hello"})

    def like(self, side: str, count: int) -> bytes:
        return self.encode({"type": "like", "side": side, "count": count})

    def vote(self, side: str, n: int) -> bytes:
        return self.encode({"type": "vote", "side": side, "id": f"v{n}"}, n)

    def ask(self, text: str, n: int) -> bytes:
        return self.encode({"type": "ask", "text": text, "id": f"q{n}"}, n)

    def round_start(self) -> bytes:
        return self.encode({"type": "round.start", "topic": "bench", "duration_s": 3600, "id": "r1"}, 1)

    @staticmethod
    def is_tally(p: bytes) -> bool:
        return b'"tally"' in p[:40]

    @staticmethod
    def is_snapshot(p: bytes) -> bool:
        return b'"snapshot"' in p[:40]

    @staticmethod
    def tally(p: bytes) -> dict:
        return orjson.loads(p)

    @staticmethod
    def reply_kind(p: bytes) -> str:
        """'ack' or 'error' for replies to a client message, else ''."""
        head = p[:24]
        if b'"ack"' in head:
            return "ack"
        if b'"error"' in head:
            return "error"
        return ""


class SocketIODialect(Dialect):
    name = "socketio"
    sio = True

    def path(self, role: str, slug: str) -> str:
        return f"/socket.io/?EIO=4&transport=websocket&role={role}&show={slug}"

    @staticmethod
    def encode(frame: dict, ack: int | None = None) -> bytes:
        data = dict(frame)
        event = data.pop("type")
        data.pop("id", None)
        return SIO_EVENT + (str(ack).encode() if ack is not None else b"") + orjson.dumps([event, data])

    @staticmethod
    def is_tally(p: bytes) -> bool:
        return p.startswith(b'42["tally"')

    @staticmethod
    def is_snapshot(p: bytes) -> bool:
        return p.startswith(b'42["snapshot"')

    @staticmethod
    def tally(p: bytes) -> dict:
        return orjson.loads(p[2:])[1]

    @staticmethod
    def reply_kind(p: bytes) -> str:
        if p.startswith(b"43"):  # ack packet: 43<id>[result]
            return "error" if b'"error"' in p[:40] else "ack"
        return ""


def dialect(server: str) -> Dialect:
    return SocketIODialect() if server == "socketio" else Dialect()
