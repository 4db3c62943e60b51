"""Each show's question clusters in this process: where a new question goes.

The record is the truth: a question's `cluster` field, set by the process that
accepts the question and changed by the host's merges, splits and undos, all of
which arrive here as question events. This keeps the matching engine
(`domain/clusters.py`) beside the replica: it proposes the cluster of a new
question, and follows every question event so that its proposals agree with the
record on every process. It is built from the record on the first question this
process accepts for the show (not for shows it only watches), and again when the
sides change (their names are how viewers address them).
"""

from ..domain.clusters import Clusterer
from ..domain.questions import REJECTED, Question
from ..domain.show import ShowState


class Clusters:
    __slots__ = ("desk", "sides")

    def __init__(self) -> None:
        self.desk: Clusterer | None = None
        self.sides: object = None

    def place(self, state: ShowState, text: str) -> str:
        """The leader of the cluster a new question with this text joins ("" : its own).
        A rejected card takes no one in."""
        desk = self._desk(state)
        leader = desk.best_cluster(text)
        if leader is None:
            return ""
        card = state.questions.get(leader)
        return "" if card is None or card.status == REJECTED else leader  # guard: rejected card

    def follow(self, q: Question) -> None:
        """A question event was applied: place the new question where the record says, or
        move it there (a merge, split or undo, one question at a time)."""
        desk = self.desk
        if desk is None:
            return  # built from the record when it is first needed
        if q.id not in desk:
            desk.add(q.id, q.text, q.leader)
        else:
            desk.follow(q.id, q.leader)

    def _desk(self, state: ShowState) -> Clusterer:
        if self.desk is None or self.sides != state.sides:
            order = sorted(state.questions.values(), key=lambda q: (q.created, q.id))
            self.desk = Clusterer.rebuild(state.sides, [(q.id, q.text, q.leader) for q in order])
            self.sides = state.sides
        return self.desk
