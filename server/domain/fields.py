"""Field checks shared by the season's records (guests, polls, invitations, talks).

A `Fields` reader takes a submitted mapping (JSON or a form), reads each field with
its rule and keeps every problem, each naming its field: a form shows them all
beside their fields (keeping what was typed), the API answers
`400 {"error": "invalid", "fields": {name: message}}`. Pure.

A problem is a `DomainError("invalid", message, field, key, params)`; pages
translate `field.err.<key>` with `params`, the API sends the English `message`.
"""

import re
from collections.abc import Iterable, Mapping
from datetime import date as Date
from typing import Any

from . import DomainError
from .text import normalise, single_line

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


class Invalid(Exception):
    """One or more fields are wrong; `problems` names each (first one first)."""

    def __init__(self, problems: list[DomainError]) -> None:
        super().__init__(problems[0].message if problems else "invalid")
        self.problems = problems

    def fields(self) -> dict[str, str]:
        """{field: English message}, the first problem of each field."""
        out: dict[str, str] = {}
        for p in self.problems:
            out.setdefault(p.field, p.message)
        return out


class Fields:
    """Reads fields out of `data` by rule; `problems` collects what is wrong."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.problems: list[DomainError] = []

    def problem(self, field: str, key: str, message: str, **params: Any) -> None:
        self.problems.append(DomainError("invalid", message, field, key, params))

    def done(self) -> None:
        """Raise `Invalid` if any field was wrong."""
        if self.problems:
            raise Invalid(self.problems)

    def text(self, field: str, limit: int, required: bool = True, multiline: bool = False) -> str:
        raw = self.data.get(field)
        if raw is None:
            raw = ""
        if not isinstance(raw, str):
            self.problem(field, "text", f"{field} must be text")
            return ""
        value = normalise(raw) if multiline else single_line(raw)
        if required and not value:
            self.problem(field, "required", f"{field} is required")
        elif len(value) > limit:
            self.problem(field, "too_long", f"{field} must be at most {limit} characters", n=limit)
        return value

    def choice(self, field: str, options: Iterable[str], default: str | None = None) -> str:
        raw = self.data.get(field)
        if (raw is None or raw == "") and default is not None:
            return default
        allowed = tuple(options)
        if raw not in allowed:
            key = "choose" if raw in (None, "") else "choice"
            self.problem(field, key, f"{field} must be one of {', '.join(allowed)}")
            return default or ""
        return str(raw)

    def integer(self, field: str, lo: int, hi: int, default: int | None = None) -> int:
        raw = self.data.get(field)
        if (raw is None or raw == "") and default is not None:
            return default
        value: int | None = None
        if isinstance(raw, bool):
            value = None
        elif isinstance(raw, int):
            value = raw
        elif isinstance(raw, str) and re.fullmatch(r"\s*\d{1,9}\s*", normalise(raw)):
            value = int(normalise(raw))
        if value is None or not lo <= value <= hi:
            key = "required" if raw in (None, "") else "number"
            self.problem(field, key, f"{field} must be a whole number from {lo} to {hi}", lo=lo, hi=hi)
            return default if default is not None else lo
        return value

    def flag(self, field: str, default: bool = False) -> bool:
        raw = self.data.get(field)
        if raw is None or raw == "":
            return default
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("1", "true", "on", "yes"):
            return True
        if isinstance(raw, str) and raw.lower() in ("0", "false", "off", "no"):
            return False
        self.problem(field, "choice", f"{field} must be true or false")
        return default

    def day(self, field: str, required: bool = True) -> str:
        raw = self.data.get(field)
        if raw in (None, "") and not required:
            return ""
        if not isinstance(raw, str) or not DATE.match(raw) or not _real_date(raw):
            key = "required" if raw in (None, "") else "date"
            self.problem(field, key, f"{field} must be a date, YYYY-MM-DD")
            return ""
        return raw

    def clock(self, field: str) -> str:
        raw = self.data.get(field)
        if raw in (None, ""):
            return ""
        if not isinstance(raw, str) or not TIME.match(raw):
            self.problem(field, "time", f"{field} must be a time, HH:MM")
            return ""
        return raw


def _real_date(value: str) -> bool:
    try:
        Date.fromisoformat(value)
    except ValueError:
        return False
    return True


MOBILE = re.compile(r"^1[3-9]\d{9}$")


def mobile(raw: str) -> str | None:
    """A mainland Chinese mobile number as 11 digits (spaces, dashes, full-width digits
    and a +86 / 0086 prefix allowed), or None."""
    digits = re.sub(r"[\s\-()（）]", "", normalise(raw))
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
            break
    return digits if MOBILE.match(digits) else None


def masked_mobile(number: str) -> str:
    """138****5678: enough for a person to recognise their own number."""
    return number[:3] + "****" + number[-4:] if len(number) == 11 else "****"


def read_mobile(f: Fields, field: str) -> str:
    """The field as a mobile number (see `mobile`), or a problem naming it."""
    raw = f.data.get(field)
    if raw in (None, ""):
        f.problem(field, "required", f"{field} is required")
        return ""
    number = mobile(raw) if isinstance(raw, str) else None
    if number is None:
        f.problem(field, "mobile", f"{field} must be a mainland mobile number, 11 digits starting with 1")
        return ""
    return number
