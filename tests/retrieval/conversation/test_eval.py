"""eval-conversation's simulated user and report, on the small real catalog."""

from __future__ import annotations

from typing import Any

from retrieval.conversation.catalog import CatalogFacts
from retrieval.evaluation.conversation_report import SYSTEMS, evaluate, markdown, pick_targets
from retrieval.evaluation.conversation_sim import SimulatedUser, departures, obeyed
from retrieval.search import SearchService


def facts(**kw: Any) -> dict[str, Any]:
    base = {"tempo": 100.0, "mode": "major", "meter": "duple", "families": {"strings"},
            "instruments": {"fiddle"}, "density": 1.0, "register": 0.75, "tune_type": "reel",
            "collection": "oneill", "artist": None, "ensemble": "solo fiddle"}
    return {**base, **kw}


def test_the_user_critiques_the_attribute_that_departs_most() -> None:
    target = facts(tempo=160.0)
    assert departures(facts(), target)["tempo"][1] == 1
    c = SimulatedUser(target, seed=1, noise=0.0).critique([facts(), facts(tempo=90.0)])
    assert c.kind == "tempo" and c.value == 1 and not c.noisy
    c = SimulatedUser(facts(mode="minor"), seed=1, noise=0.0).critique([facts()])
    assert c.kind == "mode" and c.value == "minor"
    assert obeyed(c, facts(), facts(mode="minor")) and not obeyed(c, facts(), facts())


def test_when_nothing_departs_it_points_at_the_closest_shown_track() -> None:
    target = facts(collection="bach")
    page = [facts(tune_type="jig"), facts(collection="bach"), facts(tune_type="air")]
    c = SimulatedUser(target, seed=3, noise=0.0).critique(page)
    assert c.kind == "more_like" and c.value == 2


def test_noise_share() -> None:
    user = SimulatedUser(facts(tempo=160.0), seed=0, noise=0.1)
    noisy = sum(user.critique([facts()]).noisy for _ in range(2000))
    assert 140 < noisy < 260


def test_report_on_the_small_catalog(conv_catalog: tuple[Any, SearchService]) -> None:
    factory, service = conv_catalog
    cf = CatalogFacts.load(factory, service.encoder.id)
    targets = pick_targets(cf, 300, 0)
    assert targets and all(cf.rows[t].split == "test" for t in targets)
    assert len(targets) == sum(r.split == "test" for r in cf.rows.values())  # all, when fewer
    report = evaluate(service, cf, n_targets=6, seeds=2, turns=4)
    systems = report["systems"]
    assert set(systems) == set(SYSTEMS) and all(s["n"] == 12 for s in systems.values())
    for s in systems.values():
        assert s["hit@10"] == sorted(s["hit@10"])  # cumulative: never falls
    assert len(set(systems["static"]["hit@10"])) == 1  # the static page never changes
    assert systems["oracle-filter"]["success@5"] >= systems["static"]["success@5"]
    assert "| conversational |" in markdown(report)
