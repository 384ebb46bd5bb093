"""``eval-conversation``: simulated conversations toward hidden targets, and their baselines.

Targets are test-split tracks, stratified by collection (all of them when the split holds
fewer than asked). Each target gets ``seeds`` simulated users
(:mod:`retrieval.evaluation.conversation_sim`); every system below talks to the same users
(same target, same seed, so the same opening), for ``turns`` turns (turn 1 is the opening):

- ``conversational``: the engine (:class:`ConversationEngine`), as the API runs it;
- ``no-directions``: the engine without the learned attribute directions (ablation);
- ``static``: the opening query's page, never changed;
- ``metadata-filter``: critiques as hard metadata filters only (no directions, no examples);
- ``text-append``: every critique appended to the query text, re-embedded;
- ``no-examples``: the engine without likes / "more like #j" moving the query (ablation);
- ``recommend``: the opening text plus "more like" tracks as positives, each critiqued #1 and
  "not like" track as negatives (recommend's ``average_vector``); ``recommend-best-score``
  the same with Qdrant's ``best_score`` strategy;
- ``oracle-filter``: the target's true attributes as filters (an upper bound, not a system).

A conversation succeeds at the first turn whose page (10 results) holds the target; the user
stops there. Hit@k and nDCG@10 by turn are cumulative (the target found on some page up to
that turn); the 5-turn figures are the first five turns of the same conversations.
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.conversation.catalog import CatalogFacts
from retrieval.conversation.directions import AttributeDirections, separation
from retrieval.conversation.steering import ConversationEngine, SteeringConfig
from retrieval.evaluation import sim_phrases as P
from retrieval.evaluation.conversation_sim import SimCritique, SimulatedUser, obeyed
from retrieval.search.filters import Filters
from retrieval.search.options import SearchOptions

if TYPE_CHECKING:
    from retrieval.search.service import SearchService

K = 10
SYSTEMS = ("conversational", "no-directions", "no-examples", "static", "metadata-filter",
           "text-append", "recommend", "recommend-best-score", "oracle-filter")


@dataclass
class Conversation:
    """One simulated conversation's record: the target's rank per turn, the critiques."""

    system: str
    target: int
    seed: int
    ranks: list[int | None] = field(default_factory=list)
    checks: list[tuple[str, bool]] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)


class _System:
    """A recommender under test: ``open(text) -> page`` then ``turn(critique) -> page``."""

    def open(self, text: str) -> list[int]:  # pragma: no cover - interface
        raise NotImplementedError

    def turn(self, c: SimCritique, page: list[int]) -> list[int]:  # pragma: no cover
        raise NotImplementedError


class _Engine(_System):
    def __init__(self, engine: ConversationEngine, frozen: bool = False) -> None:
        self.engine, self.frozen, self.state = engine, frozen, None

    def open(self, text: str) -> list[int]:
        t = self.engine.start(text)
        self.state, self.page = t.state, [h.track_id for h in t.hits]
        return self.page

    def turn(self, c: SimCritique, page: list[int]) -> list[int]:
        if self.frozen:
            return self.page
        t = self.engine.step(self.state, c.text)
        self.state = t.state
        return [h.track_id for h in t.hits]


class _TextAppend(_System):
    def __init__(self, service: SearchService) -> None:
        self.service, self.texts, self.shown = service, [], set()

    def _search(self) -> list[int]:
        o = SearchOptions(k=K, exclude_ids=frozenset(self.shown))
        ids = [h.track_id for h in self.service.search_text(". ".join(self.texts), o).hits]
        self.shown |= set(ids)
        return ids

    def open(self, text: str) -> list[int]:
        self.texts = [text]
        return self._search()

    def turn(self, c: SimCritique, page: list[int]) -> list[int]:
        self.texts.append(c.text)
        return self._search()


class _Recommend(_System):
    def __init__(self, service: SearchService, strategy: str = "average_vector") -> None:
        self.service, self.pos, self.neg, self.shown = service, [], [], set()
        self.strategy = strategy

    def _search(self) -> list[int]:
        o = SearchOptions(k=K, exclude_ids=frozenset(self.shown))
        ids = [h.track_id for h in self.service.recommend(self.pos, self.neg, self.strategy,  # type: ignore[arg-type]
                                                          o).hits]
        self.shown |= set(ids)
        return ids

    def open(self, text: str) -> list[int]:
        self.pos = [text]
        return self._search()

    def turn(self, c: SimCritique, page: list[int]) -> list[int]:
        if c.kind == "more_like" and c.value <= len(page):
            self.pos.append(page[c.value - 1])
        elif page:
            self.neg.append(page[0])
        return self._search()


class _Oracle(_System):
    def __init__(self, service: SearchService, catalog: CatalogFacts, target: int) -> None:
        self.service, self.shown = service, set()
        f = catalog.facts[target]
        modes = [m for m in catalog.values("mode") if f["mode"] and _family(m) == f["mode"]]
        meters = [m for m in catalog.values("meter") if f["meter"] and _meter(m) == f["meter"]]
        vals: dict[str, Any] = {"mode": modes, "meter": meters,
                                "instruments": sorted(f["instruments"])}
        if f["tempo"]:
            vals.update(tempo_min=f["tempo"] / 1.15, tempo_max=f["tempo"] * 1.15)
        if f["tune_type"]:
            vals["tune_type"] = [catalog.rows[target].tune_type]
        self.filters = Filters.from_values(vals)

    def _search(self) -> list[int]:
        o = SearchOptions(k=K, filters=self.filters, exclude_ids=frozenset(self.shown))
        ids = [h.track_id for h in self.service.search_text(self.text, o).hits]
        self.shown |= set(ids)
        return ids

    def open(self, text: str) -> list[int]:
        self.text = text
        return self._search()

    def turn(self, c: SimCritique, page: list[int]) -> list[int]:
        return self._search()


def _family(m: str) -> str | None:
    from retrieval.conversation.attributes import mode_family

    return mode_family(m)


def _meter(m: str) -> str | None:
    from retrieval.conversation.attributes import meter_class

    return meter_class(m)


def pick_targets(catalog: CatalogFacts, n: int, seed: int) -> list[int]:
    """Up to ``n`` test-split tracks, stratified by collection (round robin over strata)."""
    strata: dict[str, list[int]] = defaultdict(list)
    for i, r in catalog.rows.items():
        if r.split == "test":
            strata[r.collection or ""].append(i)
    rng = random.Random(seed)
    for ids in strata.values():
        rng.shuffle(ids)
    out: list[int] = []
    while len(out) < n and any(strata.values()):
        for key in sorted(strata):
            if strata[key] and len(out) < n:
                out.append(strata[key].pop())
    return out


def run_conversation(system: _System, user: SimulatedUser, catalog: CatalogFacts, target: int,
                     turns: int, record: Conversation) -> None:
    """Talk until the target is on the page or ``turns`` are used; fill ``record``."""
    t0 = time.perf_counter()
    page = system.open(user.opening())
    record.ms.append((time.perf_counter() - t0) * 1000)
    for turn in range(turns):
        rank = page.index(target) + 1 if target in page else None
        record.ranks.append(rank)
        if rank is not None or turn == turns - 1 or not page:
            break
        c = user.critique([catalog.facts[i] for i in page])
        before = catalog.facts[page[0]]
        t0 = time.perf_counter()
        page = system.turn(c, page)
        record.ms.append((time.perf_counter() - t0) * 1000)
        if page:
            ok = obeyed(c, before, catalog.facts[page[0]])
            if ok is not None:
                record.checks.append((c.kind, ok))


def _first(ranks: Sequence[int | None], k: int) -> int | None:
    return next((t + 1 for t, r in enumerate(ranks) if r is not None and r <= k), None)


def summarise(records: list[Conversation], turns: int) -> dict[str, Any]:
    """Hit@k and nDCG@10 by turn, success and turns-to-success at 5 and ``turns``, satisfaction."""
    out: dict[str, Any] = {}
    for name in dict.fromkeys(r.system for r in records):
        rs = [r for r in records if r.system == name]
        hit = {f"hit@{k}": [round(float(np.mean([(_first(r.ranks, k) or 99) <= t for r in rs])), 4)
                            for t in range(1, turns + 1)] for k in (1, 5, 10)}
        ndcg = [round(float(np.mean([max([1 / math.log2(x + 1) for x in r.ranks[:t]
                                          if x is not None and x <= K] or [0.0]) for r in rs])), 4)
                for t in range(1, turns + 1)]
        checks: dict[str, list[bool]] = defaultdict(list)
        for r in rs:
            for kind, ok in r.checks:
                checks[kind].append(ok)
        ms = [m for r in rs for m in r.ms[1:]]
        first = [_first(r.ranks, K) for r in rs]
        out[name] = {
            **hit, "ndcg@10": ndcg, "n": len(rs),
            "success@5": round(float(np.mean([f is not None and f <= 5 for f in first])), 4),
            f"success@{turns}": round(float(np.mean([f is not None for f in first])), 4),
            "turns_to_success@5": round(float(np.mean([f if f and f <= 5 else 6
                                                        for f in first])), 3),
            f"turns_to_success@{turns}": round(float(np.mean([f or turns + 1 for f in first])), 3),
            "satisfaction": {k: round(float(np.mean(v)), 3) for k, v in sorted(checks.items())},
            "satisfaction_n": {k: len(v) for k, v in sorted(checks.items())},
            "turn_ms_p50": round(float(np.percentile(ms, 50)), 2) if ms else None,
            "turn_ms_p99": round(float(np.percentile(ms, 99)), 2) if ms else None,
        }
    return out


def parser_coverage(parse: Callable[[str, int | None], Any]) -> dict[str, float]:
    """Share of the simulator's critique phrasings the parser reads as what they mean."""
    out = {}
    for (kind, value), phrases in P.CRITIQUE.items():
        ok = 0
        for ph in phrases:
            c = parse(ph.format(family="strings", instrument="piano", j=3, ordinal="third"), 10)
            ok += _understood(c, kind, value)
        out[f"{kind}{'' if value is None else ':' + str(value)}"] = round(ok / len(phrases), 3)
    return out


def _understood(c: Any, kind: str, value: Any) -> bool:
    if kind in ("tempo", "density", "register"):
        return c.relative.get(kind) == value or (kind == "tempo" and c.relative.get("energy") == value)
    if kind == "mode":
        return ("mode", value) in c.include or c.relative.get("mood") == (1 if value == "major" else -1)
    if kind == "meter":
        return ("meter", value) in c.include
    if kind == "with":
        return any(f in ("family", "instrument") for f, _ in c.include)
    if kind == "without":
        return any(v == "piano" for _, v in c.exclude)
    if kind == "more_like":
        return 3 in c.more_like
    return 1 in c.less_like


def evaluate(service: SearchService, catalog: CatalogFacts, *, n_targets: int = 300,
             seeds: int = 3, turns: int = 8, noise: float = 0.1, prior: Any = None,
             systems: Sequence[str] = SYSTEMS, seed: int = 0,
             progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    # long: the run's setup (directions fitted on train only), its one loop and the report
    """Run every system against the same simulated users; the report as a dict."""
    train = np.array([catalog.rows[i].split == "train" for i in catalog.ids.tolist()])
    directions = AttributeDirections.fit(catalog, service.index.reconstruct, use=train)
    auc = separation(directions, catalog, service.index.reconstruct, ~train)
    engines = {
        "conversational": ConversationEngine(service, catalog, directions=directions, prior=prior),
        "no-directions": ConversationEngine(service, catalog, directions=directions, prior=prior,
                                            config=SteeringConfig(directions=False)),
        "no-examples": ConversationEngine(service, catalog, directions=directions, prior=prior,
                                          config=SteeringConfig(examples=False)),
        "metadata-filter": ConversationEngine(
            service, catalog, directions=directions,
            config=SteeringConfig(directions=False, examples=False, prior_on_vague=False)),
    }
    static_engine = engines["conversational"]
    targets = pick_targets(catalog, n_targets, seed)
    records: list[Conversation] = []
    t0 = time.perf_counter()
    for n, target in enumerate(targets):
        for s in range(seeds):
            for name in systems:
                if name in engines:
                    system: _System = _Engine(engines[name])
                elif name == "static":
                    system = _Engine(static_engine, frozen=True)
                elif name == "text-append":
                    system = _TextAppend(service)
                elif name.startswith("recommend"):
                    system = _Recommend(service, "best_score" if name.endswith("score")
                                        else "average_vector")
                else:
                    system = _Oracle(service, catalog, target)
                user = SimulatedUser(catalog.facts[target], seed=1000 * target + s, noise=noise)
                rec = Conversation(name, target, s)
                run_conversation(system, user, catalog, target, turns, rec)
                records.append(rec)
        if progress and (n + 1) % 25 == 0:
            progress(f"{n + 1}/{len(targets)} targets, {time.perf_counter() - t0:.0f} s")
    test_n = sum(1 for r in catalog.rows.values() if r.split == "test")
    return {"targets": len(targets), "test_split_tracks": test_n, "seeds": seeds,
            "turns": turns, "noise": noise, "catalog_tracks": len(catalog),
            "prior": prior is not None, "direction_auc_test": auc,
            "parser_coverage": parser_coverage(static_engine.parser.parse),
            "wall_s": round(time.perf_counter() - t0, 1), "systems": summarise(records, turns)}


def markdown(report: dict[str, Any]) -> str:
    """The report's main table (one row per system) in Markdown."""
    turns = report["turns"]
    lines = [f"| system | hit@10 by turn (1..{turns}) | nDCG@10 @5 | success@5 | success@{turns} | "
             f"turns to success (5 / {turns}) | satisfaction tempo / mode / meter |",
             "|---|---|---|---|---|---|---|"]
    for name, s in report["systems"].items():
        sat = s["satisfaction"]
        lines.append(
            f"| {name} | {' '.join(f'{x:.2f}' for x in s['hit@10'])} | {s['ndcg@10'][min(4, turns - 1)]:.3f} | "
            f"{s['success@5']:.3f} | {s[f'success@{turns}']:.3f} | "
            f"{s['turns_to_success@5']:.2f} / {s[f'turns_to_success@{turns}']:.2f} | "
            + " / ".join(f"{sat[k]:.2f}" if k in sat else "-" for k in ("tempo", "mode", "meter"))
            + " |")
    return "\n".join(lines)
