"""The paraphrase ceiling: which renders fit a paraphrase, and the oracle's exact-render recall."""

from __future__ import annotations

import numpy as np

from retrieval.captions import paraphrase_captions, paraphrase_facts
from retrieval.evaluation.encoder_report import oracle_recall, paraphrase_relevance


def _row(tempo: str, mode: str, family: str) -> dict:
    return {"tempo_bucket": tempo, "mode_family": mode, "instrument_family": family}


def test_every_paraphrase_reads_back_to_the_facts_it_was_drawn_from() -> None:
    facts = {"tempo_bucket": "fast", "mode": "minor", "family": "strings"}
    texts = paraphrase_captions(facts, 6, seed=3)
    assert len(texts) == 6
    for t in texts:
        got = paraphrase_facts(t)
        assert got, t
        assert got.get("tempo_bucket", "fast") == "fast"
        assert got.get("mode_family", "minor") == "minor"
        assert got.get("instrument_family", "strings") == "strings"
    assert paraphrase_facts("a sorrowful, brisk track") == {"tempo_bucket": "fast", "mode_family": "minor"}


def test_relevance_keeps_only_renders_that_fit_every_stated_fact() -> None:
    rows = [_row("fast", "minor", "strings"), _row("fast", "major", "strings"), _row("slow", "minor", "organ")]
    rel = paraphrase_relevance(["a sorrowful, brisk track", "Looking for something gloomy featuring an organ"], rows)
    assert rel.tolist() == [[True, False, False], [False, False, True]]


def test_oracle_recall_is_k_over_the_group_size_capped_at_one() -> None:
    stated = np.zeros((2, 40), dtype=bool)
    stated[0, :20] = True   # own render among 20 that fit: 10 / 20
    stated[1, :5] = True    # among 5: always in the top 10
    assert oracle_recall(stated, [0, 1])["R@10"] == np.mean([0.5, 1.0])
    # a query whose own render does not fit what it states (it can happen with noisy metadata)
    # is scored as one more member of the group
    assert oracle_recall(stated[:1], [30])["R@10"] == 10 / 21
