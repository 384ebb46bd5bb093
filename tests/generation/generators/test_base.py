"""The request and candidate contracts: bounds, copies, seeds, prompts."""

from __future__ import annotations

import numpy as np
import pytest

from generation.errors import GenerationError
from generation.generators import Candidate, GenerationRequest, Generator
from generation.generators.base import MAX_CANDIDATES, MAX_DURATION_S


def test_defaults_and_seeds() -> None:
    r = GenerationRequest(text="a waltz", n_candidates=3, seed=2**32 - 2)
    assert r.seeds() == [2**32 - 2, 2**32 - 1, 0]  # candidate i uses seed + i, wrapped
    assert r.target_embeddings is None and dict(r.attributes) == {}


def test_targets_are_copied_float32_and_read_only(rng: np.random.Generator) -> None:
    t = rng.standard_normal((4, 8))
    r = GenerationRequest(target_embeddings=t)
    assert r.target_embeddings.dtype == np.float32 and r.target_embeddings.shape == (4, 8)
    t[0, 0] = 99.0  # the caller's array changing later does not change the request
    assert r.target_embeddings[0, 0] != 99.0
    with pytest.raises(ValueError):
        r.target_embeddings[0, 0] = 1.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(duration_s=0.0), "duration_s"),
    (dict(duration_s=MAX_DURATION_S + 1), "duration_s"),
    (dict(duration_s=float("nan")), "duration_s"),
    (dict(duration_s=True), "duration_s"),
    (dict(n_candidates=0), "n_candidates"),
    (dict(n_candidates=MAX_CANDIDATES + 1), "n_candidates"),
    (dict(n_candidates=2.0), "n_candidates"),
    (dict(seed=-1), "seed"),
    (dict(seed=2**32), "seed"),
    (dict(text=3), "text"),
    (dict(text="x" * 2001), "text"),
    (dict(target_embeddings=np.zeros(8)), r"\[k, d\]"),
    (dict(target_embeddings=np.zeros((0, 8))), r"\[k, d\]"),
    (dict(target_embeddings=np.array([[1.0, np.nan]])), "NaN"),
    (dict(target_embeddings=np.array([[1.0, np.inf]])), "NaN"),
    (dict(target_embeddings=[["a", "b"]]), "numeric"),
    (dict(attributes={"meter": 3}), "meter"),
    (dict(attributes={"": "x"}), "non-empty"),
    (dict(attributes=["meter"]), "mapping"),
])
def test_bad_values_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(GenerationError, match=match):
        GenerationRequest(**kwargs)


def test_prompt_reads_attributes_as_words() -> None:
    r = GenerationRequest(text=" a dance tune ", attributes={
        "Tune type": "waltz", "meter": "3/4", "mode": "minor", "tempo-class": "slow",
        "ensemble": "accordion", "color": "dark"})
    assert dict(r.attributes) == {"tune_type": "waltz", "meter": "3/4", "mode": "minor",
                                  "tempo_class": "slow", "ensemble": "accordion", "color": "dark"}
    assert r.prompt() == ("a dance tune, waltz, in 3/4, in a minor key, slow tempo, "
                          "for accordion, dark color")
    assert GenerationRequest().prompt() == ""
    with pytest.raises(TypeError):
        r.attributes["meter"] = "4/4"  # read-only view


def test_candidate_checks_its_audio() -> None:
    ok = Candidate(np.zeros(10, np.float32), 8000, None, {}, "g", 0, "w@0")
    assert ok.duration_s == pytest.approx(10 / 8000)
    for audio in (np.zeros((2, 10), np.float32), np.zeros(10), np.zeros(0, np.float32),
                  np.array([np.nan], np.float32)):
        with pytest.raises(GenerationError):
            Candidate(audio, 8000, None, {}, "g", 0, "w@0")
    with pytest.raises(GenerationError, match="sample_rate"):
        Candidate(np.zeros(10, np.float32), 0, None, {}, "g", 0, "w@0")


def test_protocol_is_structural() -> None:
    class Echo:
        id, weights_id, sample_rate = "echo", "echo@0", 8000

        def generate(self, request: GenerationRequest) -> list[Candidate]:
            return [Candidate(np.zeros(8, np.float32), 8000, None, {"prompt": request.prompt()},
                              self.id, s, self.weights_id) for s in request.seeds()]

    assert isinstance(Echo(), Generator)
    assert [c.seed for c in Echo().generate(GenerationRequest(n_candidates=2, seed=5))] == [5, 6]
