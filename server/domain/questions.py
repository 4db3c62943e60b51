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
    side: str | None = None  # addressed to a side ("a", "b"), or to both (None)
    cluster: str = ""  # the question that leads its cluster ("" : itself)
    aired: bool = False  # it has been on air
    by: str = ""  # the moderator who last acted on it (consoles only)
    air: str = ""  # the host's on-air wording ("" = as asked); `text` stays as asked, for the record

    @property
    def shown(self) -> str:
        """The text every screen shows: the host's wording if there is one."""
        return self.air or self.text

    @property
    def public(self) -> bool:
        return self.status in PUBLIC

    @property
    def leader(self) -> str:
        return self.cluster or self.id

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
            "side": self.side,
            "cluster": self.leader,
        }

    def redacted_view(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status}

    def console_view(self) -> dict[str, Any]:
        view = self.public_view()
        view["device"] = self.device
        if self.flagged:
            view["flagged"] = True
        if self.by:
            view["by"] = self.by
        if self.air:
            view["original"] = self.text
        return view

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> "Question":
        return cls(**data)


def edit(question: Question | None, qid: str, text: str, by: str = "") -> Question:
    """The host's on-air wording of a question (shortened or corrected). The words as
    asked stay in `text`; an empty `text`, or the words as asked, restore them."""
    if question is None:
        raise DomainError("not_found", f"no question {qid}")
    if question.status == REJECTED:
        raise DomainError("conflict", "a rejected question is not shown anywhere; approve it first")
    air = "" if text == question.text else text
    return replace(question, air=air, by=by or question.by)  # guard: original kept


def moderate(
    questions: dict[str, Question], featured: str | None, qid: str, action: str, by: str = ""
) -> tuple[list[Question], str | None]:
    """Apply a moderation action; return the questions that changed and the new featured id."""
    question = questions.get(qid)
    if question is None:
        raise DomainError("not_found", f"no question {qid}")
    allowed, target = MODERATION[action]
    if question.status not in allowed:
        who = f" ({question.by})" if question.by else ""
        raise DomainError("conflict", f"cannot {action} a question that is {question.status}{who}")
    changed: list[Question] = []
    new_featured = featured
    if target == FEATURED:
        previous = questions.get(featured) if featured else None
        if previous is not None and previous.id != qid and previous.status == FEATURED:
            changed.append(replace(previous, status=APPROVED, by=by))
        new_featured = qid
    elif featured == qid:
        new_featured = None
    changed.append(replace(question, status=target, by=by, aired=question.aired or target == FEATURED))
    return changed, new_featured


def members(questions: dict[str, Question], leader: str) -> list[Question]:
    """A cluster's questions, its leader first."""
    out = [q for q in questions.values() if q.leader == leader]
    return sorted(out, key=lambda q: (q.id != leader, q.created))


def merge(questions: dict[str, Question], qid: str, into: str, by: str = "") -> list[Question]:
    """Put a question (and, if it leads one, its cluster) into another's cluster."""
    question, target = questions.get(qid), questions.get(into)
    if question is None or target is None:
        raise DomainError("not_found", f"no question {qid if question is None else into}")
    leader = target.leader
    if question.leader == leader:
        raise DomainError("conflict", "already in that cluster")
    return [replace(q, cluster=leader, by=by) for q in members(questions, question.leader)]


def split(questions: dict[str, Question], qid: str, by: str = "") -> list[Question]:
    """Take a question out of its cluster (it leads its own). If it led others, the
    earliest of them leads them now."""
    question = questions.get(qid)
    if question is None:
        raise DomainError("not_found", f"no question {qid}")
    group = members(questions, question.leader)
    if len(group) < 2:
        raise DomainError("conflict", "it is alone in its cluster")
    changed = [replace(question, cluster="", by=by)]
    if question.leader == qid:
        rest = [q for q in group if q.id != qid]
        new_leader = rest[0].id
        changed += [replace(q, cluster="" if q.id == new_leader else new_leader, by=by) for q in rest]
    return changed
