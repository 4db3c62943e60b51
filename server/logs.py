"""Structured logs: one JSON object per line (LOG_FORMAT=json) or plain text."""

import json
import logging
import time
from typing import Any

# No caller lookup (file, line, function) for each record: these logs never print it, and
# it was a tenth of a reconnect storm's CPU (docs/performance.md; the logging HOWTO,
# "Optimization", documents this switch).
logging._srcfile = None


class QuietSockets(logging.Filter):
    """Leaves out uvicorn's lines for every WebSocket that opens (`[accepted]`, `connection
    open`, `connection closed`) unless LOG_SOCKETS=1: in a reconnect storm of 10,000 phones
    they were a fifth of the server's CPU (docs/performance.md). Refused sockets still log."""

    QUIET = ("connection open", "connection closed")

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        return not (msg in self.QUIET or (isinstance(msg, str) and msg.endswith("[accepted]")))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("show", "role", "code"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def log_config(fmt: str, level: str, sockets: bool = False) -> dict:
    """A logging config for uvicorn.run(log_config=...) covering uvicorn's loggers and ours;
    with `sockets`, uvicorn's line for every WebSocket opened and closed too."""
    formatter = (
        {"()": JsonFormatter} if fmt == "json" else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    handler: dict[str, Any] = {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
    if not sockets:
        handler["filters"] = ["quiet_sockets"]
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"quiet_sockets": {"()": QuietSockets}},
        "handlers": {"default": handler},
        "loggers": {
            name: {"handlers": ["default"], "level": level, "propagate": False}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "leitai")
        },
    }
