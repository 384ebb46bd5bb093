"""What a query names outright, and how much of a catalog has it."""

from __future__ import annotations

import math

import pytest

from retrieval.search.named import named_filters, named_support


@pytest.mark.parametrize(("text", "want"), [
    ("a waltz", {"tune_type": ["waltz"]}),
    ("a slip jig on the tin whistle", {"tune_type": ["slip jig"], "instruments": ["tin whistle"]}),
    ("a string quartet", {"ensemble": ["string quartet"]}),
    ("a tune on the highland pipes", {"instruments": ["bagpipes"]}),
    ("a mournful slow air in a minor key", {"tune_type": ["air"], "mode": ["minor"]}),
    ("a sad, melancholic melody", {}),  # mood words are the embeddings' business
    ("Jigs and reels", {"tune_type": ["reel", "jig"]}),  # longest phrase first
    ("a fairytale", {}),  # no "air" inside other words
])
def test_named_filters(text: str, want: dict) -> None:
    assert named_filters(text) == want


def test_named_support_scale() -> None:
    def count(named: dict) -> int:
        return {"waltz": 0, "reel": 99}.get(named.get("tune_type", [""])[0], 0)

    assert named_support("a waltz", count, 1000) == 0.0
    assert named_support("a reel", count, 1000) == pytest.approx(math.log1p(99) / math.log1p(1000))
    assert named_support("something nice", count, 1000) == 1.0
