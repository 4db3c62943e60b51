"""Prototype (bench experiment only): a new pending question is not broadcast
(redacted) to every phone and overlay; only consoles and the asker's own sockets
get a frame. (It breaks the one-frame-per-seq rule for phones; it only measures
what the broadcast costs.)"""
from server import node as N, protocol
from server.domain import show as dshow
from server.node import now_ms

_orig = N.Node._fan_out


def _fan_out(self, rt, seq, event):
    if event.get("type") == "question" and event["question"].get("status") == "pending":
        console, public, private = dshow.event_views(event, now_ms())
        rt.room.broadcast(("console",), protocol.with_seq(seq, protocol.encode(console)))
        owners = rt.room.by_device.get(event["question"]["device"]) or ()
        if owners:
            private_bytes = protocol.with_seq(seq, protocol.encode(private))
            for conn in owners:
                conn.send(private_bytes)
        return
    return _orig(self, rt, seq, event)


N.Node._fan_out = _fan_out
