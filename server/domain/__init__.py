"""Pure domain of a show: no I/O, no asyncio, no Starlette.

Commands come in as plain values; the functions return the events (frame
bodies) that describe the change. `ShowState.apply` folds an event into the
state, so every process can keep a replica that is exactly the sum of the
events it has seen.

This module is also the one place for the rules every layer shares: the sides,
their default names and colours, and the text limits (the settings may change
the limits; `TextLimits` carries them into the domain, the forms and, through
`server.protocol.rules`, the browser).
"""

from dataclasses import dataclass
from typing import Any

SIDES = ("a", "b")
DEFAULT_COLORS = {"a": "#d7263d", "b": "#1b6fd1"}
DEFAULT_SIDE_NAMES = {"a": "红方", "b": "蓝方"}


@dataclass(frozen=True, slots=True)
class TextLimits:
    """Character limits of every text a person types (after normalisation)."""

    question: int = 280
    name: int = 40
    topic: int = 120
    title: int = 120
    side_name: int = 40
    guest: int = 40
    org: int = 80
    plan_rounds: int = 50

    def side_field(self, field: str) -> int:
        return {"name": self.side_name, "guest": self.guest, "org": self.org}[field]


LIMITS = TextLimits()


class DomainError(Exception):
    """A command that does not fit: `code` is one of the protocol's error codes.

    `field` names the input at fault (for forms and field-level API errors) and
    `key` + `params` say what is wrong in a form the pages translate
    (`form.err.<key>` in the string catalog); `message` is the English text.
    """

    def __init__(
        self, code: str, message: str, field: str = "", key: str = "", params: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.key = key
        self.params = params or {}
