"""The conversational recommender's engine: a state and a message -> the next page and a reply.

Steering, in the order it is applied (each measured by ``tunescope eval-conversation``):

1. hard constraints as filters: inclusions, entities and tempo bounds become the search's
   :class:`Filters`; exclusions, density and register bounds, dislikes and every track already
   shown become excluded ids;
2. relative attributes as bounds on the shown track they refer to ("faster than #1") *and* as
   learned directions in the embedding space (:mod:`retrieval.conversation.directions`), which
   reorder what the bounds allow;
3. likes and "more like #j" pull the query toward the examples, dislikes and "not like #1"
   push it away (Qdrant's ``average_vector`` rule, weighted: the text keeps its say);
4. a vague turn (nothing to steer by) searches from the diffusion prior's seeds when a prior
   is given, for breadth;
5. when nothing passes every constraint, the oldest constraints are dropped one at a time, and
   the reply says which.

The engine reads no database after it is built and writes none: the API stores the state.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.conversation import state as st
from retrieval.conversation.attributes import instrument_families, meter_class, mode_family
from retrieval.conversation.catalog import CatalogFacts
from retrieval.conversation.critique import Critique
from retrieval.conversation.directions import AttributeDirections
from retrieval.conversation.parser import OfflineParser
from retrieval.conversation.replies import compose_reply, reasons
from retrieval.encoders.base import l2_normalize
from retrieval.errors import InvalidQueryError
from retrieval.search.filters import Filters
from retrieval.search.options import Hit, SearchOptions
from retrieval.search.weak_match import WeakMatch

if TYPE_CHECKING:
    from retrieval.prior.pipeline import PriorPipeline
    from retrieval.search.service import SearchService

Understand = Callable[[str, int | None], Critique]


@dataclass(frozen=True)
class SteeringConfig:
    """Tuning of the engine (defaults chosen by ``eval-conversation`` on the demo catalog).

    Attributes:
        k: results per turn.
        tempo_step: "faster" means at least this ratio above the reference tempo.
        direction_scale: weight of one relative critique's learned direction on the query.
        positive_weight / negative_weight: pull of liked / push of disliked examples.
        constraints / directions / examples: switch each steering part (for ablations).
        prior_on_vague: search from the prior's seeds on a turn with nothing to steer by.
        relax: drop old constraints when nothing passes them all.
    """

    k: int = 10
    tempo_step: float = 1.08
    direction_scale: float = 0.15
    positive_weight: float = 0.6
    negative_weight: float = 0.3
    constraints: bool = True
    directions: bool = True
    examples: bool = True
    prior_on_vague: bool = True
    relax: bool = True


@dataclass
class TurnResult:
    """One turn's answer: the new state, the page, the reply and what was understood.

    ``weak`` is the weak-match verdict of the search that made the page (None only when no
    search ran).
    """

    state: dict[str, Any]
    hits: list[Hit]
    reasons: list[list[str]]
    reply: str
    critique: Critique
    notes: list[str] = field(default_factory=list)
    weak: WeakMatch | None = None

    def understood(self) -> dict[str, Any]:
        """What the API echoes: the parsed critique, its labels, the active chips, the notes."""
        return {"critique": self.critique.to_dict(), "labels": self.critique.labels(),
                "chips": st.chips(self.state), "notes": list(self.notes)}


class ConversationEngine:
    """Turns messages into pages over one search service (see the module doc)."""

    def __init__(self, service: SearchService, catalog: CatalogFacts, *,
                 directions: AttributeDirections | None = None,
                 understand: Understand | None = None, prior: PriorPipeline | None = None,
                 config: SteeringConfig | None = None) -> None:
        self.service = service
        self.catalog = catalog
        self.config = config or SteeringConfig()
        self.parser = OfflineParser(catalog.vocabulary())
        self.understand: Understand = understand or self.parser.parse
        self.prior = prior
        self.directions = directions if directions is not None else AttributeDirections.fit(
            catalog, service.index.reconstruct)
        self._modes = {fam: [m for m in catalog.values("mode") if mode_family(m) == fam]
                       for fam in ("major", "minor")}
        meters = catalog.values("meter")
        self._meters = {c: [m for m in meters if meter_class(m) == c]
                        for c in ("duple", "triple", "compound")}
        instruments = sorted({i for s in catalog.instruments for i in s})
        self._family_instruments = {f: [i for i in instruments if f in instrument_families([i])]
                                    for f in {x for s in catalog.families for x in s}}

    @classmethod
    def build(cls, service: SearchService, session_factory: Callable[[], Any], **kw: Any
              ) -> ConversationEngine:
        """An engine over the tracks ``service``'s encoder has embedded in the catalog."""
        return cls(service, CatalogFacts.load(session_factory, service.encoder.id), **kw)

    # ------------------------------------------------------------------ turns

    def start(self, text: str | None = None, clip_vector: np.ndarray | None = None,
              track_ids: Sequence[int] = ()) -> TurnResult:
        """The opening turn: a request in words, a clip's embedding and/or example tracks.

        Raises:
            InvalidQueryError: nothing to start from.
            TrackNotFoundError: an example track the catalog does not hold.
        """
        if not (text and text.strip()) and clip_vector is None and not track_ids:
            raise InvalidQueryError("a conversation starts from a text, a clip or track ids")
        state = st.new_state()
        if clip_vector is not None:
            state["clip"] = [float(x) for x in np.asarray(clip_vector, np.float32)]
        self.service.track_vectors(list(track_ids))  # unknown ids: 404 before anything else
        for t in track_ids:
            st.add_example(state, int(t), True, self._title(int(t)))
        critique = self.understand(text or "", None) if text else Critique()
        if text and text.strip():
            state["texts"].append(text.strip())
        return self._turn(state, critique, [], [])

    def step(self, state: dict[str, Any], text: str = "", liked: Sequence[int] = (),
             disliked: Sequence[int] = (), remove: Sequence[str] = (), repeat: bool = False
             ) -> TurnResult:
        """A later turn: a critique in words, likes and dislikes, chips removed."""
        state = {**st.new_state(), **_copy(state)}
        state["turn"] += 1
        critique = self.understand(text, len(state["page"]) or None) if text.strip() else Critique()
        critique.repeat = critique.repeat or repeat
        notes = st.remove_chips(state, list(remove))
        # A like of a track the catalog does not hold (deleted since, or a typo) is said, not
        # fatal: the rest of the turn still steers.
        known = {t for t in [*liked, *disliked] if t in self.service.table and t in self.service.index}
        notes += [f"track {t} is not in the catalog, so I ignored it"
                  for t in dict.fromkeys([*liked, *disliked]) if t not in known]
        liked, disliked = [t for t in liked if t in known], [t for t in disliked if t in known]
        for t in liked:
            st.add_example(state, int(t), True, self._label(state, int(t)))
        for t in disliked:
            st.add_example(state, int(t), False, self._label(state, int(t)))
        if critique.free_text:
            state["texts"].append(critique.free_text)
        return self._turn(state, critique, notes, list(liked))

    def _turn(self, state: dict[str, Any], c: Critique, notes: list[str], liked: list[int]
              ) -> TurnResult:
        notes = [*notes, *c.notes]
        page = [int(t) for t in state["page"]]
        refs_like = [page[p - 1] for p in c.more_like if 0 < p <= len(page)]
        for p, t in zip(c.more_like, refs_like, strict=False):
            st.add_example(state, t, True, f"#{p}")
        for p in c.less_like:
            if 0 < p <= len(page):
                st.add_example(state, page[p - 1], False, f"#{p}")
        for f, v in c.entities:
            if f == "title":
                for t in self.catalog.title_ids(v)[:3]:
                    st.add_example(state, t, True, f"“{v}”")
        if self.config.constraints:
            notes += st.apply_constraints(state, c)
            ref_id = (refs_like or liked or page or [None])[0]
            ref = self.catalog.facts.get(ref_id) if ref_id is not None else None
            label = state["labels"].get(str(ref_id), "#1") if ref_id in refs_like + liked else "#1"
            notes += st.apply_relative(state, c, ref, label, self.config.tempo_step)
        else:
            for attr, sign in c.relative.items():
                state["directions"][attr] = state["directions"].get(attr, 0) + sign
        hits, relax_notes, weak = self._search(state, c)
        notes += relax_notes
        state["page"] = [h.track_id for h in hits]
        state["shown"] = list(dict.fromkeys([*state["shown"], *state["page"]]))
        why, kept = self._reasons(state, hits)
        reply = compose_reply(c.labels(), kept, notes, len(hits), len(state["shown"]))
        return TurnResult(state, hits, why, reply, c, notes, weak)

    # ------------------------------------------------------------------ search

    def query_vector(self, state: dict[str, Any]) -> np.ndarray:
        """The turn's query point: words, clip and examples, moved along learned directions."""
        dim = self.service.index.dim
        q = np.zeros(dim, np.float32)
        if state["texts"]:
            tv = self.service.embed_texts(state["texts"])
            w = np.array([1.0] + [0.5] * (len(tv) - 1), np.float32)
            q += (w[:, None] * tv).sum(0) / w.sum()
        if state["clip"] is not None:
            q += np.asarray(state["clip"], np.float32)
        pos, neg = state["positives"], state["negatives"]
        if self.config.examples or not q.any():
            if pos:
                pv = self.service.index.reconstruct(pos).mean(0)
                q = q + (self.config.positive_weight if q.any() else 1.0) * pv
            if neg and self.config.examples:
                q = q - self.config.negative_weight * self.service.index.reconstruct(neg).mean(0)
        if not q.any():
            raise InvalidQueryError("nothing left to search from: add a text or a liked track")
        q = l2_normalize(q[None, :])[0]
        if self.config.directions and state["directions"]:
            q = self.directions.steer(q, state["directions"], self.config.direction_scale)
        return q

    def options(self, state: dict[str, Any], repeat: bool = False) -> SearchOptions:
        """Filters and excluded ids from the active chips, the examples and what was shown."""
        values: dict[str, Any] = {}
        excluded: set[int] = set(state["negatives"]) | set(state["positives"])
        if not repeat:
            excluded |= set(state["shown"])
        instruments: list[str] = []
        for ch in state["chips"].values():
            kind, f, v = ch["kind"], ch["field"], ch.get("value")
            if kind == "include" and f == "mode":
                values["mode"] = self._modes.get(v, [v]) or [v]
            elif kind == "include" and f == "meter":
                values["meter"] = self._meters.get(v, [v]) or [v]
            elif kind == "include":
                instruments += [v] if f == "instrument" else self._family_instruments.get(v, [v])
            elif kind == "exclude":
                excluded |= set(self.catalog.matching(f, v).tolist())
            elif kind == "entity":
                values[f] = [v]
            elif kind == "bound" and f == "tempo":
                values["tempo_min"], values["tempo_max"] = ch.get("lo"), ch.get("hi")
            elif kind == "bound":
                excluded |= set(self.catalog.outside(f, ch.get("lo"), ch.get("hi")).tolist())
        if instruments:
            values["instruments"] = sorted(set(instruments))
        return SearchOptions(k=self.config.k, filters=Filters.from_values(values),
                             exclude_ids=frozenset(excluded))

    def _search(self, state: dict[str, Any], c: Critique
                ) -> tuple[list[Hit], list[str], WeakMatch | None]:
        q = self.query_vector(state)
        notes: list[str] = []
        while True:
            o = self.options(state, c.repeat)
            hits, weak = self._rank(state, q, o, c)
            if hits or not self.config.relax or not state["chips"]:
                return hits, notes, weak
            oldest = min(state["chips"].values(), key=lambda ch: ch["turn"])
            del state["chips"][oldest["key"]]
            notes.append(f"nothing matched every constraint, so I dropped “{oldest['label']}”")

    def _rank(self, state: dict[str, Any], q: np.ndarray, o: SearchOptions, c: Critique
              ) -> tuple[list[Hit], WeakMatch | None]:
        vague = not c.has_steering() and not state["positives"] and not state["chips"]
        if vague and self.prior is not None and self.config.prior_on_vague and state["texts"]:
            from retrieval.search.generative import GenerativeConfig, generative_search

            r = generative_search(self.service, self.prior, state["texts"][:1],
                                  options=o, config=GenerativeConfig(seeds=8, seed=state["turn"]))
            return [Hit(int(i), float(s)) for i, s in zip(r.ids, r.scores, strict=True)], r.weak
        result = self.service.search_vector(q, o)
        return result.hits, result.weak

    # ------------------------------------------------------------------ replies

    def _reasons(self, state: dict[str, Any], hits: list[Hit]) -> tuple[list[list[str]], str | None]:
        chips = list(state["chips"].values())
        pos = state["positives"]
        pv = self.service.index.reconstruct(pos) if pos and hits else None
        out, kept = [], None
        for h in hits:
            liked = []
            if pv is not None:
                j = int(np.argmax(pv @ self.service.index.reconstruct([h.track_id])[0]))
                liked = [(state["labels"].get(str(pos[j]), "a liked track"),
                          self.catalog.rows.get(pos[j]))]
            meta = self.catalog.rows.get(h.track_id)
            why = reasons(meta, chips, [x for x in liked if x[1] is not None]) if meta else []
            out.append(why)
            if kept is None:
                kept = next((w for w in why if w.startswith("kept the")), None)
        return out, kept

    def _title(self, track_id: int) -> str:
        row = self.catalog.rows.get(track_id)
        return f"“{row.title}”" if row is not None and row.title else f"track {track_id}"

    def _label(self, state: dict[str, Any], track_id: int) -> str:
        page = [int(t) for t in state["page"]]
        return f"#{page.index(track_id) + 1}" if track_id in page else self._title(track_id)


def _copy(state: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(state)
