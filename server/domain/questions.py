"""Audience questions and their moderation."""

from dataclasses import asdict, dataclass, replace
from typing import Any

from . import DomainError

PENDING, APPROVED, FEATURED, ANSWERED, REJECTED = ("pending", "approved", "featured", "answered", "rejected")
STATUSES = (PENDING, APPROVED, FEATURED, ANSWERED, REJECTED)
PUBLIC = frozenset((APPROVED, FEATURED, ANSWERED))

# action -> (statuses it may start from, status it leads to)
MODERATION: dict[str, tuple[frozenset[str], str]] = {
    "approve": (frozenset((PENDING, REJECTED)), APPROVED),
    "reject": (frozenset((PENDING, APPROVED, FEATURED, ANSWERED)), REJECTED),
    "feature": (frozenset((PENDING, APPROVED, ANSWERED)), FEATURED),
    "unfeature": (frozenset((FEATURED,)), APPROVED),
    "answered": (frozenset((APPROVED, FEATURED)), ANSWERED),
}


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    text: str
    name: str
    status: str
    created: int  # ms since the epoch
    device: str  # short hash of the asker's device, for "mine" and moderation
    upvotes: int = 0
    flagged: bool = False
    air: str = ""  # the host's on-air wording ("" = as asked); `text` stays as asked, for the record

    @property
    def shown(self) -> str:
        """The text every screen shows: the host's wording if there is one."""
        return self.air or self.text

    @property
    def public(self) -> bool:
        return self.status in PUBLIC

    def record(self) -> dict[str, Any]:
        return asdict(self)

    def public_view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.shown,
            "name": self.name,
            "status": self.status,
            "upvotes": self.upvotes,
            "created": self.created,
        }

    def redacted_view(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status}

    def console_view(self) -> dict[str, Any]:
        view = self.public_view()
        view["device"] = self.device
        if self.flagged:
            view["flagged"] = True
        if self.air:
            view["original"] = self.text
        return view

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> "Question":
        return cls(**data)


def edit(question: Question | None, qid: str, text: str) -> Question:
    """The host's on-air wording of a question (shortened or corrected). The words as
    asked stay in `text`; an empty `text`, or the words as asked, restore them."""
    if question is None:
        raise DomainError("not_found", f"no question {qid}")
    if question.status == REJECTED:
        raise DomainError("conflict", "a rejected question is not shown anywhere; approve it first")
    air = "" if text == question.text else text
    return replace(question, air=air)  # guard: original kept


def moderate(
    questions: dict[str, Question], featured: str | None, qid: str, action: str
) -> tuple[list[Question], str | None]:
    """Apply a moderation action; return the questions that changed and the new featured id."""
    question = questions.get(qid)
    if question is None:
        raise DomainError("not_found", f"no question {qid}")
    allowed, target = MODERATION[action]
    if question.status not in allowed:
        raise DomainError("conflict", f"cannot {action} a question that is {question.status}")
    changed: list[Question] = []
    new_featured = featured
    if target == FEATURED:
        previous = questions.get(featured) if featured else None
        if previous is not None and previous.id != qid and previous.status == FEATURED:
            changed.append(replace(previous, status=APPROVED))
        new_featured = qid
    elif featured == qid:
        new_featured = None
    changed.append(replace(question, status=target))
    return changed, new_featured
