"""Records the answer steps pass down: analysis → spans → alignments → decision → Answer.

Kept at the bottom of the package, so the steps import these and never each other upwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..records import Article, Hit

# What a question asks for (the "slot" its answer fills).
SLOTS = ("number", "date", "person", "role", "organization", "place", "list", "yesno", "description")
# Slots whose answer is a short span that can lead the reply.
SHORT_SLOTS = frozenset({"number", "date", "person", "role", "organization", "place", "list"})

# How a question's constraint relates to a candidate span.
MATCH, CONFLICT, MISSING = "match", "conflict", "missing"


@dataclass(frozen=True)
class AnswerParams:
    """Every constant of the extractive answerer; recorded in eval's report.json.

    The weights that turn alignment features into a decision are not here: they are fitted
    (eval/decision_train.py) and read from `decision_model` (JSON)."""

    max_articles: int = 5  # retrieved articles whose sentences are candidates
    max_quote: int = 160  # a longer sentence is clipped to its best window of clauses
    pair_max: int = 220  # two adjacent sentences are one candidate up to this length
    passage_max: int = 300  # a description question's quote: three adjacent sentences of one paragraph, or one long sentence unclipped, up to this length
    list_item_max: int = 10  # a list item longer than this is prose, not an item
    quote_head_window: int = 8  # “除早、除小”的原则: how far from a quoted term the asked noun may be
    max_citations: int = 3  # quotes shown in one answer
    second_quote_margin: float = 1.0  # a second quote's ranking logit is at most this below the best
    nearby_min_coverage: float = 0.3  # below this share of the question, nothing is "nearby"
    weight_single_char: float = 0.3  # idf multiplier for one-character tokens
    weight_subword: float = 0.5  # idf multiplier for a token inside another question token
    weight_unseen: float = 0.8  # an unseen token weighs this share of the largest idf
    weighty_share: float = 0.5  # a token is "weighty" at this share of the heaviest
    decision_model: str = "decision.json"  # in rag/answer/, fitted by eval/decision_train.py


@dataclass(frozen=True)
class Analysis:
    """What a question asks and which of its words must hold in the evidence."""

    question: str
    slot: str
    unit: str  # the measure word of a 多少/几 question (多少人 -> 人), "" if none
    years: tuple[int, ...] = ()
    ordinals: tuple[str, ...] = ()  # normalised: 第三届 -> "3届"
    entities: tuple[str, ...] = ()  # offices, organisations, people, places named
    indicators: tuple[str, ...] = ()  # what a number question measures (财政收入, 人口)
    weights: dict[str, float] = field(default_factory=dict)  # token -> information (idf)
    unseen: frozenset[str] = frozenset()  # question tokens the archive has never seen (开诊, 5G基站)
    unseen_event: str = ""  # a date question's event verb the archive never writes (什么时候开诊)

    @property
    def total_weight(self) -> float:
        return sum(self.weights.values()) or 1.0


@dataclass(frozen=True)
class Span:
    """A quotable stretch of one article body: a sentence, a clipped clause window, a pair."""

    article: Article
    hit: Hit
    start: int
    end: int
    sentences: int = 1
    from_yearless: bool = False  # found by the engine's search without the asked year

    @property
    def text(self) -> str:
        return self.article.body[self.start : self.end]

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.article.id, self.start, self.end)


@dataclass(frozen=True)
class Alignment:
    """A span measured against an analysis: features for the decision, and what conflicts."""

    span: Span
    features: dict[str, float]
    year: str = ""  # match / conflict / missing; "" when the question names no year
    found_year: int | None = None  # the year the span speaks about, where it says one
    entity: str = ""
    found_entity: str = ""  # the other office/place named where the asked one is absent
    ordinal: str = ""
    found_ordinal: str = ""
    indicator: str = ""
    absent_entity: str = ""  # an office or place asked about that the span's page never names
    score: float = 0.0  # ranking logit from the decision model: which span answers
    free_score: float = 0.0  # the same with conflicts ignored: "would answer, but for…"
    # a span about another year, measured against the question re-asked for that year (its
    # lead and clauses are then found as for a question about that year); None otherwise
    year_features: dict[str, float] | None = None

    @property
    def free_features(self) -> dict[str, float]:
        """The features the span would have had its conflicts not been there (before `freed`)."""
        return self.features if self.year_features is None else self.year_features

    @property
    def conflicts(self) -> list[str]:
        return [name for name in ("year", "entity", "ordinal") if getattr(self, name) == CONFLICT]


@dataclass(frozen=True)
class Decision:
    """answer: quote `chosen`; nearby: abstain, offering chosen[0] labelled; none: abstain."""

    action: str  # "answer" | "nearby" | "none"
    chosen: tuple[Alignment, ...] = ()
    reason: str = ""  # "year", "entity", "entity_absent", "ordinal", "indicator", "event_unseen", "weak", "no-hits", "no-number"
    asked: str = ""  # the value asked (2022年, 明湖办事处)
    found: str = ""  # the value the nearby fact has (2020年, 前程办事处)
    confidence: float = 0.0  # the answer model's probability for the span acted on
