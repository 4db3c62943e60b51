"""Pure domain of a show: no I/O, no asyncio, no Starlette.

Commands come in as plain values; the functions return the events (frame
bodies) that describe the change. `ShowState.apply` folds an event into the
state, so every process can keep a replica that is exactly the sum of the
events it has seen.
"""

SIDES = ("a", "b")


class DomainError(Exception):
    """A command that does not fit: `code` is one of the protocol's error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
