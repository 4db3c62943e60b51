"""Question clusters: questions that ask the same thing, grouped as one card.

Pure and incremental; no I/O. A `Clusterer` holds one show's questions:

    desk = Clusterer(show.sides)
    desk.add("q7", "请问王书记，医院党建怎样让病人少跑腿？")  # -> "q7" (a new cluster) or a leader's id
    desk.merge("q9", into="q7")    # the host: q9's whole cluster joins q7's  -> Move
    desk.split("q9")               # the host: q9 alone again                  -> Move
    desk.undo(move)                # take that merge or split back             -> Move
    Clusterer.rebuild(sides, [(qid, text, cluster), ...], heads=saved)  # after a restart

A cluster's id is the id of the question that leads it (the SPEC's `cluster`:
"the id of the question that leads its cluster, or its own id").

How a new question is matched (docs/question-desk.md has the figures and why):

1. `normalise`: full-width to half-width, traditional to simplified, lower case;
   every name of a side ("王书记", "王伟", "红方嘉宾") becomes that side's token;
   politeness and filler ("请问", "我想问一下", "吗", "呢") go; variants of question
   words become one ("如何/怎样/咋" -> "怎么", "会不会" -> "会"); punctuation and
   spaces go. A leading address ("王书记，", "两位嘉宾：") only says whom the
   question is for: it is kept as the question's side, not matched on.
2. Similarity: the cosine of the two questions' characters, each weighted by its
   inverse document frequency in this show's queue so far (a character every
   question has, like "党", counts little); times 0 if they are addressed to
   different sides, times `focus_penalty` if one asks "when" and the other
   something else, times `swap_penalty` for each word one has where the other has
   another ("医院…病人" / "社区…居民").
3. Candidates: an inverted index, gram (characters and character pairs) -> the
   questions new ones are compared with. A new question looks up only its rarest
   grams, reads only the latest entries of each, and scores a capped number of
   clusters, so the cost of `add` does not grow with the queue (`Tuning` holds the
   caps, `stats` counts the work).

A new question joins the cluster it scores best with if the score reaches
`Tuning.threshold`, else leads a cluster of its own. It is compared with each
cluster's heads: the leader, and the heads of clusters the host merged into it.
A question that joined by matching does not become a head, so one loose match does
not pull in the next (no chains). `add` never moves a question already placed: the
host's merges and splits stand.
"""

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import SIDES, DomainError
from .hanzi import simplify

# One private-use character per side stands for every alias of that side.
SIDE_TOKENS: dict[str, str] = {side: chr(0xE100 + i) for i, side in enumerate(SIDES)}
_TOKEN_SIDE = {token: side for side, token in SIDE_TOKENS.items()}

# How viewers address a guest: after the surname ("王书记"), the name ("王伟书记") or the side ("红方嘉宾").
TITLES = (
    "副书记", "书记", "嘉宾", "会长", "院长", "副院长", "老师", "主任", "总", "经理", "董事长", "先生", "女士",
    "同志", "代表", "姐", "哥",
)  # fmt: skip
# Roles that close an organisation field ("澳洋医院党委副书记" -> "澳洋医院").
_ROLE_TAIL = re.compile(
    "(党委|党总支|党支部|总支|支部|党组织)?(副书记|书记|副会长|会长|副院长|院长|主任|负责人|董事长|总经理|经理)$"
)
_COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "令狐", "慕容", "司徒", "夏侯", "长孙")

# Said to be polite or to take a run-up; carries nothing about what is asked.
FILLERS = (
    "请问一下", "请问下", "请问", "请教一下", "请教", "我想请问", "我想问一下", "我想问下", "我想问问", "我想问",
    "想问一下", "想问下", "想问问", "问一下", "麻烦问一下", "我想知道", "想知道", "我想了解一下", "想了解一下",
    "我很好奇", "你好", "您好", "大家好", "主持人好", "谢谢", "感谢", "哈哈", "吗", "呢", "啊", "呀", "吧",
    "嘛", "哦", "啦",
)  # fmt: skip
# Words that, alone before the first pause, are an address ("两位书记，…").
ADDRESS_WORDS = ("两位书记", "两位嘉宾", "两位老师", "两位", "各位", "二位", "主持人", "书记", "嘉宾", "老师")
# Common variants of one question word or phrase -> one form. General Chinese, not this show's topics.
SYNONYMS: dict[str, str] = {
    "怎么样": "怎么", "怎样": "怎么", "如何": "怎么", "咋样": "怎么", "咋": "怎么",
    "什么时候": "何时", "啥时候": "何时", "啥时": "何时", "几时": "何时",
    "为什么": "为何", "为啥": "为何",
    "啥": "什么", "甚么": "什么", "哪儿": "哪里",
    "会不会": "会", "能不能": "能", "能否": "能", "可不可以": "可以", "可否": "可以", "是不是": "是",
    "有没有": "有", "要不要": "要",
    "患者": "病人", "老百姓": "群众", "咱们": "我们", "您": "你",
    "跟": "和", "几号": "何时", "哪天": "何时", "下期": "下一期",
    "差别": "区别", "不同": "区别", "不一样": "区别", "差异": "区别",
    "搞": "做", "抓": "做", "开展": "做",
}  # fmt: skip


def _alternation(words: Iterable[str]) -> "re.Pattern[str]":
    return re.compile("|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True)))


_FILLER_RE = _alternation(FILLERS)
_SYNONYM_RE = _alternation(SYNONYMS)
_ADDRESS_RE = _alternation(ADDRESS_WORDS)
# After SYNONYMS, "when" is always this; the other question words, for "asks something else".
_WHEN = "何时"
_QUESTION_WORD = re.compile("怎么|什么|哪里|哪些|在哪|去哪|谁|为何|多少")
_PAUSE = re.compile(r"[,，:：;；!！?？.。、\s]")


def _guest_aliases(guest: str) -> set[str]:
    out = {guest}
    if len(guest) >= 2 and all("\u4e00" <= ch <= "\u9fff" for ch in guest):
        surname = guest[:2] if guest.startswith(_COMPOUND_SURNAMES) or len(guest) == 4 else guest[0]
        out.update(surname + title for title in TITLES)
    out.update(guest + title for title in TITLES)
    return out


def _org_aliases(org: str) -> set[str]:
    out = {org}
    while (stripped := _ROLE_TAIL.sub("", org)) != org:
        org = stripped
        out.add(org)
    for name in list(out):
        if name.startswith("市") and len(name) > 4:
            out.add(name[1:])
    return out


class Aliases:
    """The names of a show's sides, folded, each mapped to its side.

    `sides` is the show's `{"a": {"name", "guest", "org"}, "b": {...}}`; a side may
    also carry `"aliases": [...]`, more names for it. Names of the side and its guest
    ("红方嘉宾", "王伟", "王书记") are replaced by the side's token; the organisation
    ("澳洋医院") stays in the text, since it is also what the question is about, but
    tells the side. A name shorter than two characters, or one both sides would
    claim, is not used.
    """

    def __init__(self, sides: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        names: dict[str, set[str]] = {}
        orgs: dict[str, set[str]] = {}
        for side, info in (sides or {}).items():
            if side not in SIDE_TOKENS:
                continue
            mine: set[str] = set()
            if name := str(info.get("name") or ""):
                mine.add(name)
                mine.update(name + title for title in TITLES)
            if guest := str(info.get("guest") or ""):
                mine |= _guest_aliases(guest)
            mine.update(str(a) for a in info.get("aliases") or ())
            _claim(names, mine, side)
            if org := str(info.get("org") or ""):
                _claim(orgs, _org_aliases(org), side)
        self.table: dict[str, str] = {k: SIDE_TOKENS[next(iter(s))] for k, s in names.items() if len(s) == 1}
        self.orgs: dict[str, str] = {k: next(iter(s)) for k, s in orgs.items() if len(s) == 1}
        self._re = _alternation(self.table) if self.table else None
        self._org_re = _alternation(self.orgs) if self.orgs else None

    def replace(self, folded: str) -> str:
        """`folded` (already simplified) with every name of a side replaced by its token."""
        if self._re is None:
            return folded
        return self._re.sub(lambda m: self.table[m.group(0)], folded)

    def organisations(self, folded: str) -> frozenset[str]:
        """The sides whose organisation `folded` names."""
        if self._org_re is None:
            return frozenset()
        return frozenset(self.orgs[m] for m in self._org_re.findall(folded))


def _claim(claims: dict[str, set[str]], names: Iterable[str], side: str) -> None:
    for name in names:
        key = _PAUSE.sub("", simplify(name))
        if len(key) >= 2:
            claims.setdefault(key, set()).add(side)


@dataclass(frozen=True, slots=True)
class Normalised:
    """A question in the form it is matched in."""

    text: str  # the words that are compared: letters, digits and side tokens
    sides: frozenset[str]  # the sides it names, in the address or in the text
    addressed: frozenset[str]  # the sides its leading address names ("王书记，…")
    when: bool | None  # asks "when" (True), asks something else (False), or has no question word (None)


_TOKENS = "".join(_TOKEN_SIDE)


def _strip_address(text: str) -> tuple[str, frozenset[str]]:
    """Set aside a leading address: a first clause made only of names and address words
    ("王书记，", "两位嘉宾：") or, without a pause, names at the very start ("王书记医院…")."""
    parts = _PAUSE.split(text, maxsplit=1)
    if len(parts) == 2 and parts[1].strip() and not _ADDRESS_RE.sub("", parts[0]).strip(_TOKENS):
        return parts[1], frozenset(_TOKEN_SIDE[ch] for ch in parts[0] if ch in _TOKEN_SIDE)
    body = text.lstrip(_TOKENS)
    if not body:
        return text, frozenset()
    return body, frozenset(_TOKEN_SIDE[ch] for ch in text[: len(text) - len(body)])


def normalise(text: str, aliases: Aliases | None = None) -> Normalised:
    """The matching form of a question (see the module's docstring, step 1)."""
    folded = simplify(text)
    named: frozenset[str] = frozenset()
    if aliases is not None:
        named = aliases.organisations(folded)
        folded = aliases.replace(folded)
    folded = _FILLER_RE.sub("", folded)
    folded, addressed = _strip_address(folded.strip())
    folded = _SYNONYM_RE.sub(lambda m: SYNONYMS[m.group(0)], folded)
    kept = "".join(ch for ch in folded if ch.isalnum() or ch in _TOKEN_SIDE)
    named = named | addressed | {_TOKEN_SIDE[ch] for ch in kept if ch in _TOKEN_SIDE}
    when = True if _WHEN in kept else (False if _QUESTION_WORD.search(kept) else None)
    return Normalised(kept, _one(named), _one(addressed), when)


_SIDE_SETS: dict[frozenset[str], frozenset[str]] = {}


def _one(sides: frozenset[str]) -> frozenset[str]:
    """One shared object for each set of sides (there are four): a show keeps a
    `Normalised` per question, and its two sets were a third of its size."""
    return _SIDE_SETS.setdefault(sides, sides)


def addressed_side(text: str, aliases: Aliases) -> str | None:
    """The side a question is obviously for ("a" or "b"): the only side it names; else None."""
    named = normalise(text, aliases).sides
    return next(iter(named)) if len(named) == 1 else None


def grams(text: str, sizes: tuple[int, ...] = (1, 2)) -> frozenset[str]:
    """The character n-grams of a normalised text, of each size in `sizes`."""
    if sizes == (1,):
        return frozenset(text)
    return frozenset(text[i : i + n] for n in sizes for i in range(len(text) - n + 1))


def swapped_words(a: str, b: str) -> int:
    """Places where one text has two or more characters and the other has two or more
    different ones: "医院党建怎么让病人少跑腿" / "社区党建怎么让居民少跑腿" has two (医院/社区,
    病人/居民). A typo swaps one character, an added word swaps none."""
    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    return sum(1 for op, i1, i2, j1, j2 in opcodes if op == "replace" and i2 - i1 >= 2 and j2 - j1 >= 2)


@dataclass(frozen=True, slots=True)
class Tuning:
    """The knobs. The defaults are chosen on tests/data/questions.jsonl (docs/question-desk.md)."""

    threshold: float = 0.42  # similarity at or above which a new question joins a cluster
    compare: tuple[int, ...] = (1,)  # n-gram sizes compared (1: characters, IDF-weighted)
    lookup: tuple[int, ...] = (1, 2)  # n-gram sizes looked up in the index to find candidates
    probes: int = 12  # a new question looks up at most this many of its grams, the rarest first
    postings: int = 64  # and reads at most this many of the latest entries under each
    candidates: int = 32  # then scores at most this many clusters (those with the most in common)
    heads: int = 4  # against at most this many of each cluster's heads (its leader, then those merged in)
    focus_penalty: float = 0.8  # similarity factor when one question asks "when" and the other something else
    swap_penalty: float = 0.8  # similarity factor for each word one question has where the other has another


@dataclass(slots=True)
class Stats:
    """Work done by `add`, for the tests and the bench: per add it must not grow with the queue."""

    adds: int = 0
    postings_read: int = 0  # inverted-index entries read, over all adds
    comparisons: int = 0  # similarities computed, over all adds
    max_postings_read: int = 0  # the most in any one add
    max_comparisons: int = 0

    def count(self, read: int, compared: int) -> None:
        self.adds += 1
        self.postings_read += read
        self.comparisons += compared
        self.max_postings_read = max(self.max_postings_read, read)
        self.max_comparisons = max(self.max_comparisons, compared)


@dataclass(frozen=True, slots=True)
class Move:
    """What a manual change did: the questions whose cluster changed, before and after.

    `kind` is "merge", "split" or "undo". Give a merge or a split to
    `Clusterer.undo` to take it back. Empty `after`: nothing changed.
    """

    kind: str
    question: str
    before: Mapping[str, str] = field(default_factory=dict)
    after: Mapping[str, str] = field(default_factory=dict)


Record = tuple[str, str, str | None]  # (question id, text, stored cluster or None)
Sides = Mapping[str, Mapping[str, Any]]


class Clusterer:
    """One show's question clusters (see the module's docstring).

    Each cluster has heads: the questions a new question is compared with. The
    leader is one; a merge adds the heads of the cluster merged in, so questions
    like those join too. A question that joins by matching is not a head (that
    keeps one loose match from pulling in the next: no chains).
    """

    def __init__(self, sides: Sides | None = None, tuning: Tuning | None = None) -> None:
        self.aliases = Aliases(sides)
        self.tuning = tuning or Tuning()
        self.stats = Stats()
        self._seq: dict[str, int] = {}  # question -> arrival order
        # question -> its matching form; its grams are made from it when needed, not kept
        # (a question's two gram sets were ~8 KiB: most of what a show's clusters held)
        self._norm: dict[str, Normalised] = {}
        self._df: dict[str, int] = {}  # gram -> how many questions have it
        self._postings: dict[str, list[str]] = {}  # gram -> the heads that have it, in the order posted
        self._posted: set[str] = set()
        self._cluster: dict[str, str] = {}  # question -> its leader
        self._members: dict[str, list[str]] = {}  # leader -> its questions, in arrival order
        self._heads: dict[str, list[str]] = {}  # leader -> its heads, the leader first
        self._weight_cache: dict[str, float] = {}  # gram -> idf squared, for the current number of questions
        self._weights_at = 0

    # -- reading

    def __len__(self) -> int:
        return len(self._seq)

    def __contains__(self, qid: object) -> bool:
        return qid in self._seq

    def cluster_of(self, qid: str) -> str:
        """The id of the question leading `qid`'s cluster (its own id if it leads or is alone)."""
        if qid not in self._cluster:
            raise DomainError("not_found", f"no question {qid}")
        return self._cluster[qid]

    def members(self, qid: str) -> list[str]:
        """The questions of `qid`'s cluster, in arrival order."""
        return list(self._members[self.cluster_of(qid)])

    def heads(self, qid: str) -> list[str]:
        """The questions of `qid`'s cluster that new questions are compared with, the leader first."""
        return list(self._heads[self.cluster_of(qid)])

    def clusters(self) -> dict[str, list[str]]:
        """Every cluster: leader -> its questions in arrival order."""
        return {leader: list(qs) for leader, qs in self._members.items()}

    def extra_heads(self) -> dict[str, list[str]]:
        """Leader -> the heads it has besides itself, for the clusters the host's merges gave
        more than one: with each question's cluster, what makes `rebuild` exact."""
        return {leader: heads[1:] for leader, heads in self._heads.items() if len(heads) > 1}

    def assignments(self) -> dict[str, str]:
        """Question -> cluster for every question: what a store keeps as each question's `cluster`."""
        return dict(self._cluster)

    def side_of(self, text: str) -> str | None:
        """The side `text` is obviously for, with this show's aliases (`addressed_side`)."""
        return addressed_side(text, self.aliases)

    def similarity(self, a: str, b: str) -> float:
        """The score of two texts against each other, with the current weights (for tuning)."""
        na, nb = normalise(a, self.aliases), normalise(b, self.aliases)
        sizes = self.tuning.compare
        return self._match(na, grams(na.text, sizes), nb, grams(nb.text, sizes))

    # -- placing new questions

    def add(self, qid: str, text: str, cluster: str | None = None) -> str:
        """Place a new question; return its cluster. Adding a known id again changes nothing.

        `cluster`, if given, is where the question goes, decided elsewhere (another
        process's `add`, carried in the question's event): a replica follows it
        instead of deciding again. An id it does not know makes the question lead
        its own cluster.
        """
        if qid in self._seq:
            return self._cluster[qid]
        norm = normalise(text, self.aliases)
        compare, lookup = grams(norm.text, self.tuning.compare), grams(norm.text, self.tuning.lookup)
        best = self._best_cluster(lookup, compare, norm) if cluster is None else self._cluster.get(cluster)
        self._remember(qid, compare | lookup, norm)
        if best is None:
            self._members[qid] = [qid]
            self._heads[qid] = [qid]
            self._cluster[qid] = qid
            self._post(qid)
            return qid
        self._members[best].append(qid)
        self._cluster[qid] = best
        return best

    def best_cluster(self, text: str) -> str | None:
        """The cluster a question with this text would join now, or None; changes nothing."""
        norm = normalise(text, self.aliases)
        return self._best_cluster(grams(norm.text, self.tuning.lookup), grams(norm.text, self.tuning.compare), norm)

    def _best_cluster(self, lookup: frozenset[str], compare: frozenset[str], norm: Normalised) -> str | None:
        """The cluster whose heads are most like the new question, if it reaches the threshold."""
        tuning = self.tuning
        leaders, read = self._candidates(lookup)
        best, best_score, compared = None, tuning.threshold, 0
        norm2 = sum(map(self._weights(compare).__getitem__, compare))
        for leader in leaders:
            for head in self._heads[leader][: tuning.heads]:
                compared += 1
                other = self._norm[head]
                score = self._match(norm, compare, other, grams(other.text, tuning.compare), best_score, norm2)
                if score >= best_score:
                    best, best_score = leader, score
        self.stats.count(read, compared)
        return best

    def _candidates(self, lookup: frozenset[str]) -> tuple[list[str], int]:
        """The clusters whose heads share the most weight of the question's rarest grams, and
        how many index entries were read to find them.

        Reads at most `probes` posting lists and the latest `postings` entries of
        each, and returns at most `candidates` clusters, so the work is bounded
        whatever the length of the queue.
        """
        tuning, df = self.tuning, self._df
        probes = sorted((g for g in lookup if g in self._postings), key=lambda g: (df[g], g))[: tuning.probes]
        shared: dict[str, float] = {}
        read = 0
        for gram in probes:
            weight = self._idf(gram)
            latest = self._postings[gram][-tuning.postings :]  # guard: cluster postings cap
            read += len(latest)
            for head in latest:
                leader = self._cluster[head]
                shared[leader] = shared.get(leader, 0.0) + weight
        seq = self._seq
        # guard: cluster candidates cap
        return sorted(shared, key=lambda c: (-shared[c], seq[c]))[: tuning.candidates], read

    def _remember(self, qid: str, every: frozenset[str], norm: Normalised) -> None:
        """A new question: its arrival, its matching form, and each of its grams counted once."""
        self._seq[qid] = len(self._seq)
        self._norm[qid] = norm
        for gram in every:
            self._df[gram] = self._df.get(gram, 0) + 1

    def _post(self, qid: str) -> None:
        """Put a head in the index (once)."""
        if qid in self._posted:
            return
        self._posted.add(qid)
        for gram in grams(self._norm[qid].text, self.tuning.lookup):
            self._postings.setdefault(gram, []).append(qid)

    def _match(
        self,
        a: Normalised,
        a_grams: frozenset[str],
        b: Normalised,
        b_grams: frozenset[str],
        floor: float = 0.0,
        a_norm: float = 0.0,
    ) -> float:
        """How alike two questions are, 0..1: the cosine of their grams, times `_apart`, times
        `swap_penalty` for each swapped word (looked for only if the score could reach `floor`)."""
        score = self._apart(a, b)
        if score:
            score *= self._cosine(a_grams, b_grams, a_norm)
        if score and score >= floor:
            score *= self.tuning.swap_penalty ** swapped_words(a.text, b.text)
        return score

    def _apart(self, a: Normalised, b: Normalised) -> float:
        """What the similarity of two questions is multiplied by: 0 if they are addressed to
        different sides, `focus_penalty` if one asks "when" and the other something else."""
        if len(a.addressed) == 1 and len(b.addressed) == 1 and a.addressed != b.addressed:
            return 0.0
        if a.when is not None and b.when is not None and a.when != b.when:
            return self.tuning.focus_penalty
        return 1.0

    def _idf(self, gram: str) -> float:
        """Inverse document frequency in this show's queue: log(1 + (N + 1) / (df + 1))."""
        return math.log(1.0 + (len(self._seq) + 1) / (self._df.get(gram, 0) + 1))

    def _weights(self, *gram_sets: frozenset[str]) -> dict[str, float]:
        """gram -> idf squared, for at least these grams; kept until the next question
        arrives (the weights move with the number of questions)."""
        if self._weights_at != len(self._seq):
            self._weight_cache.clear()
            self._weights_at = len(self._seq)
        cache, idf = self._weight_cache, self._idf
        for grams_ in gram_sets:
            for gram in grams_ - cache.keys():
                cache[gram] = idf(gram) ** 2
        return cache

    def _cosine(self, a: frozenset[str], b: frozenset[str], a_norm: float = 0.0) -> float:
        """Cosine of two sets of grams, each gram weighted by its idf (`a_norm`: a's squared
        norm, if the caller has it)."""
        shared = a & b
        if not shared:
            return 0.0
        weight = self._weights(a, b).__getitem__
        return sum(map(weight, shared)) / math.sqrt((a_norm or sum(map(weight, a))) * sum(map(weight, b)))

    # -- the host's corrections

    def merge(self, qid: str, into: str) -> Move:
        """Put `qid`'s whole cluster into `into`'s cluster, which keeps its leader; the heads of
        both stay heads, so new questions like either side of the merge join it."""
        source, target = self.cluster_of(qid), self.cluster_of(into)
        if source == target:
            return Move("merge", qid)
        return self._regroup("merge", qid, dict.fromkeys(self._members[source] + self._members[target], target))

    def split(self, qid: str) -> Move:
        """Take `qid` out of its cluster to stand alone and lead its own; if it led, the
        earliest of the others leads them."""
        group = self._members[self.cluster_of(qid)]
        rest = [q for q in group if q != qid]
        if not rest:
            return Move("split", qid)
        labels = dict.fromkeys(rest, self._cluster[qid] if self._cluster[qid] != qid else rest[0])
        labels[qid] = qid
        return self._regroup("split", qid, labels)

    def undo(self, move: Move) -> Move:
        """Take back a merge or a split, as far as later changes allow; return what changed.

        Each question the move changed, if it is still in the cluster the move put it
        in, goes back to the cluster it was in before (led by the same question if
        that question is there, else by the earliest). Questions added meanwhile stay
        in the cluster they joined.
        """
        back = {q: old for q, old in move.before.items() if self._cluster.get(q) == move.after.get(q)}
        if move.kind not in ("merge", "split") or not back:
            return Move("undo", move.question)
        touched = {self._cluster[q] for q in back} | {old for old in back.values() if old in self._members}
        labels = {q: self._cluster[q] for leader in touched for q in self._members[leader]}
        labels.update(back)
        return self._regroup("undo", move.question, labels)

    def follow(self, qid: str, cluster: str) -> Move:
        """Put one question in the cluster a decision made elsewhere says (its event's
        `cluster`: a leader's id, or its own id to stand alone); every other question
        stays where it is. If `qid` led, the earliest of the rest leads them. A replica
        follows the host's merges, splits and undos this way, one question at a time."""
        old = self.cluster_of(qid)
        target = qid if cluster == qid else self._cluster.get(cluster, cluster)
        if old == target and (target != qid or len(self._members[old]) == 1):
            return Move("follow", qid)
        # the rest of its cluster stays together (led by the earliest, if it led them)
        labels = dict.fromkeys(self._members[old], "\0rest" if old == qid else old)
        if target != qid and target in self._members:
            labels.update(dict.fromkeys(self._members[target], target))
        labels[qid] = target
        return self._regroup("follow", qid, labels)

    def _regroup(self, kind: str, qid: str, labels: dict[str, str]) -> Move:
        """Re-form the clusters of the questions in `labels` (all the members of every
        cluster they are in), by `_groups`. A cluster's heads: its leader, then those of
        its questions that were heads before."""
        before = {q: self._cluster[q] for q in labels}
        was_head = {h for leader in set(before.values()) for h in self._heads.pop(leader)}
        for leader in set(before.values()):
            del self._members[leader]
        for leader, group in self._groups(labels).items():
            self._settle(leader, group, [leader, *(q for q in group if q in was_head and q != leader)])
            self._post(leader)
        changed = [q for q in labels if self._cluster[q] != before[q]]
        return Move(kind, qid, {q: before[q] for q in changed}, {q: self._cluster[q] for q in changed})

    def _groups(self, labels: Mapping[str, str]) -> dict[str, list[str]]:
        """Questions with one label are one cluster, led by the question whose id is the
        label if it is among them, else by the earliest: leader -> questions in arrival order."""
        by_label: dict[str, list[str]] = {}
        for q in sorted(labels, key=self._seq.__getitem__):
            by_label.setdefault(labels[q], []).append(q)
        return {(label if label in group else group[0]): group for label, group in by_label.items()}

    def _settle(self, leader: str, group: list[str], heads: list[str]) -> None:
        self._members[leader] = group
        self._heads[leader] = heads
        for q in group:
            self._cluster[q] = leader

    # -- after a restart

    @classmethod
    def rebuild(
        cls,
        sides: Sides | None,
        records: Iterable[Record],
        tuning: Tuning | None = None,
        heads: Mapping[str, Iterable[str]] | None = None,
    ) -> "Clusterer":
        """The clusterer a show had, from its stored questions in arrival order.

        Each record is `(id, text, cluster)`. Stored clusters are kept, so the host's
        merges and splits survive a restart: questions naming the same cluster are
        one, led by the question with that id if it is among them, else by the
        earliest. `heads` is what `extra_heads()` returned before the restart; with
        it, later questions are placed exactly as they would have been without the
        restart. Without it the heads are found again by a rule (in arrival order,
        each question like none of the heads before it: one the host merged in),
        which is nearly always the same. Records whose cluster is None (stored before
        clusters existed) are then added, in order, as `add` does.
        """
        desk = cls(sides, tuning)
        labels: dict[str, str] = {}
        late: dict[str, str] = {}
        for qid, text, cluster in records:
            if qid in labels or qid in late:
                continue
            if cluster is None:
                late[qid] = text
                continue
            norm = normalise(text, desk.aliases)
            desk._remember(qid, grams(norm.text, (*desk.tuning.compare, *desk.tuning.lookup)), norm)
            labels[qid] = cluster
        for leader, group in desk._groups(labels).items():
            if heads is None:
                found = desk._find_heads(leader, group)
            else:
                kept = set(group) & set(heads.get(leader, ()))
                found = [leader, *(q for q in group if q in kept and q != leader)]
            desk._settle(leader, group, found)
        for head in sorted((h for hs in desk._heads.values() for h in hs), key=desk._seq.__getitem__):
            desk._post(head)
        for qid, text in late.items():
            desk.add(qid, text)
        return desk

    def _find_heads(self, leader: str, group: list[str]) -> list[str]:
        heads = [leader]
        for q in group:
            if q != leader and all(self._score(q, h) < self.tuning.threshold for h in heads):
                heads.append(q)
        return heads

    def _score(self, a: str, b: str) -> float:
        na, nb, sizes = self._norm[a], self._norm[b], self.tuning.compare
        return self._match(na, grams(na.text, sizes), nb, grams(nb.text, sizes))
