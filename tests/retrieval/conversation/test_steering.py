"""The engine over a real SQLite catalog and FAISS index: constraints, memory, examples, notes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from retrieval.conversation.catalog import CatalogFacts
from retrieval.conversation.directions import AttributeDirections, separation
from retrieval.conversation.steering import ConversationEngine
from retrieval.search import InvalidQueryError, SearchService, TrackNotFoundError


def meta(engine: ConversationEngine, tid: int) -> Any:
    return engine.catalog.rows[tid]


def ids(turn: Any) -> list[int]:
    return [h.track_id for h in turn.hits]


def test_opening_turn_understands_and_filters(engine: ConversationEngine) -> None:
    t = engine.start("a slow air in a minor key")
    assert t.hits and all(meta(engine, i).mode == "minor" and meta(engine, i).tempo_bpm < 80 for i in ids(t))
    keys = {c["key"] for c in t.understood()["chips"]}
    assert {"include:mode:minor", "bound:tempo"} <= keys
    assert t.reply.startswith("Slow, minor key")


def test_faster_moves_every_result_past_the_reference(engine: ConversationEngine) -> None:
    t = engine.start("a reel")
    ref = meta(engine, ids(t)[0]).tempo_bpm
    t2 = engine.step(t.state, "faster")
    assert t2.hits and all(meta(engine, i).tempo_bpm >= ref * 1.08 for i in ids(t2))
    assert not set(ids(t)) & set(ids(t2))  # shown tracks are not repeated
    assert any("BPM" in w and "faster than #1" in w for w in t2.reasons[0])


def test_exclusions_are_remembered_and_removable(engine: ConversationEngine) -> None:
    t = engine.step(engine.start("a tune").state, "no piano")
    assert all("piano" not in meta(engine, i).instruments for i in ids(t))
    t2 = engine.step(t.state, "in three")  # a later turn keeps the exclusion
    assert all("piano" not in meta(engine, i).instruments and meta(engine, i).meter == "3/4"
               for i in ids(t2))
    t3 = engine.step(t2.state, "", remove=["exclude:instrument:piano"])
    assert "exclude:instrument:piano" not in {c["key"] for c in t3.understood()["chips"]}


def test_more_like_and_not_like_use_the_shown_page(engine: ConversationEngine) -> None:
    t = engine.start("a jig")
    second, first = ids(t)[1], ids(t)[0]
    t2 = engine.step(t.state, "more like #2, not like the first")
    assert t2.state["positives"] == [second] and t2.state["negatives"] == [first]
    assert second not in ids(t2) and first not in ids(t2)
    assert any(w.startswith("kept the") for why in t2.reasons for w in why)


def test_bad_references_and_contradictions_are_said(engine: ConversationEngine) -> None:
    t = engine.start("a waltz")
    t2 = engine.step(t.state, "more like #40, faster but slower")
    assert "no #40" in t2.reply and "kept neither" in t2.reply and t2.hits


def test_impossible_constraints_are_relaxed_oldest_first(engine: ConversationEngine) -> None:
    t = engine.step(engine.start("anything").state, "no fiddle")
    t2 = engine.step(t.state, "no piano, no flute, no violin, no cello")
    assert "dropped" in t2.reply and t2.hits
    assert "exclude:instrument:fiddle" not in t2.state["chips"]


def test_repeat_shows_tracks_again(engine: ConversationEngine) -> None:
    t = engine.start("a reel")
    assert set(ids(engine.step(t.state, "show them again"))) & set(ids(t))


def test_likes_from_the_body_and_unknown_ids(engine: ConversationEngine) -> None:
    t = engine.start("a march")
    t2 = engine.step(t.state, "", liked=[ids(t)[3]])
    assert t2.state["positives"] == [ids(t)[3]] and t2.state["labels"][str(ids(t)[3])] == "#4"
    t3 = engine.step(t.state, "", liked=[99999])
    assert "Track 99999 is not in the catalog" in t3.reply and t3.hits
    with pytest.raises(TrackNotFoundError):
        engine.start(track_ids=[99999])
    with pytest.raises(InvalidQueryError):
        engine.start("")


def test_state_is_json_and_resumes(engine: ConversationEngine) -> None:
    import json

    t = engine.start("a jig with strings")
    state = json.loads(json.dumps(t.state))
    a, b = engine.step(state, "slower"), engine.step(t.state, "slower")
    assert ids(a) == ids(b)


def test_directions_are_learned_and_measured(conv_catalog: tuple[Any, SearchService]) -> None:
    factory, service = conv_catalog
    cf = CatalogFacts.load(factory, service.encoder.id)
    train = np.array([cf.rows[i].split == "train" for i in cf.ids.tolist()])
    d = AttributeDirections.fit(cf, service.index.reconstruct, use=train)
    auc = separation(d, cf, service.index.reconstruct, ~train)
    assert auc["tempo"] > 0.8 and auc["mood"] > 0.8  # the synthetic vectors carry both
    q = service.index.reconstruct([1])[0]
    faster = d.steer(q, {"tempo": 1}, 0.5)
    assert faster @ d.vectors["tempo"] > q @ d.vectors["tempo"]
